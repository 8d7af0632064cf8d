"""SIGKILL at many points of ``train``, ``checkpoints rename`` and ``checkpoints import``; after each kill
the workspace keeps its promises: listed checkpoints load, nothing is orphaned unreported, ``doctor
--repair`` restores a consistent store without losing weights, and the killed run resumes.

Kills come from the store's test hook ``KDCAM_TEST_CRASH_AT=N`` (the process SIGKILLs itself at its Nth
store file operation, so every window between two renames is hit) and from random delays (seeded)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from engine.api.checkpoints import CheckpointMeta
from engine.api.runs import list_runs
from engine.checkpoints.store import CheckpointStore
from engine.models import build_model
from tests.hostile.store_helpers import TRAIN, check_workspace, kdcam

pytestmark = [pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork"),
              pytest.mark.usefixtures("one_thread")]



def small_store(workspace: Path) -> CheckpointStore:
    store = CheckpointStore(workspace / "checkpoints")
    torch.manual_seed(0)
    store.save("t", build_model("vgg8", 4, 0.06), CheckpointMeta(name="t", arch="vgg8", num_classes=4, width=0.06,
                                                                  role="teacher"))
    store.save("s", build_model("vgg8", 4, 0.06), CheckpointMeta(name="s", arch="vgg8", num_classes=4, width=0.06,
                                                                  role="student", teacher="t"))
    return store


def test_rename_killed_at_every_step_is_completed_or_never_happened(tmp_path):
    for point in range(1, 13):
        workspace = tmp_path / f"rename{point}"
        small_store(workspace)
        code = kdcam(workspace, "checkpoints", "rename", "t", "u", crash_at=point)
        check_workspace(workspace)
        store = CheckpointStore(workspace / "checkpoints")
        names = sorted(m.name for m in store.list())
        assert names in (["s", "t"], ["s", "u"]), (point, names)
        assert store.meta("s").teacher == names[1], point  # the student follows its teacher's name
        if code == 0:
            break
        assert code == -9, code
    else:
        pytest.fail("rename never got past the crash points")
    assert point > 4  # the rename has at least four file operations, each one was a kill point


def test_import_killed_at_every_step_leaves_all_or_nothing(tmp_path):
    source = tmp_path / "net.pth"
    torch.save(build_model("vgg8", 4, 0.25).state_dict(), source)
    for point in range(1, 13):
        workspace = tmp_path / f"import{point}"
        small_store(workspace)
        code = kdcam(workspace, "checkpoints", "import", str(source), "--name", "imp", crash_at=point)
        check_workspace(workspace)
        names = sorted(m.name for m in CheckpointStore(workspace / "checkpoints").list())
        assert names in (["s", "t"], ["imp", "s", "t"]), (point, names)
        if code == 0:
            break
        assert code == -9, code
    else:
        pytest.fail("import never got past the crash points")
    first = tmp_path / "import1"  # killed before anything was committed: importing again just works
    assert kdcam(first, "checkpoints", "import", str(source), "--name", "imp") == 0
    assert sorted(m.name for m in CheckpointStore(first / "checkpoints").list()) == ["imp", "s", "t"]


@pytest.mark.parametrize("seed", [0, 1])
def test_train_killed_anywhere_keeps_the_store_consistent_and_resumes(tmp_path, seed):
    rng = random.Random(seed)
    # the teacher's store operations: 2 reservations, then 6 per checkpoint saved (2 temporaries, the
    # journal, 2 renames, the journal's removal), -last and best each epoch; 15..20 is epoch 2's -last
    kills = [{"crash_at": rng.randrange(15, 21)}, {"crash_at": rng.randrange(1, 50)}]
    kills.append({"kill_after": rng.uniform(0.3, 2.0)})
    resumed = 0
    for number, kill in enumerate(kills):
        workspace = tmp_path / f"train{number}"
        code = kdcam(workspace, *TRAIN, **kill)
        assert code in (0, -9), (kill, code)
        check_workspace(workspace)
        killed = [run for run in list_runs(workspace) if run.state == "interrupted"]  # its process is gone
        if code == 0:
            assert not killed
            continue
        for run in killed:
            if run.resumable:
                assert kdcam(workspace, *TRAIN[:1], "--resume", run.run_id, "--json") == 0, (kill, run.run_id)
                check_workspace(workspace)
                store = CheckpointStore(workspace / "checkpoints")
                name = run.config.name
                assert store.meta(name).run_id == run.run_id and store.meta(f"{name}-last").epochs == 2
                resumed += 1
    assert resumed, "no kill landed after a finished epoch: nothing was resumed"
