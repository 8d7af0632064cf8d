"""Known groupings of class names, so a diagnosis can say "confused within a superclass".

CIFAR-100's 20 coarse classes (Krizhevsky, 2009), keyed by the fine class names as
torchvision spells them. Compound names (``circle/solid``) need no table: their shared
parts are the grouping (see ``diagnosis.related``).
"""

from __future__ import annotations

_CIFAR100_COARSE = {
    "aquatic mammals": "beaver dolphin otter seal whale",
    "fish": "aquarium_fish flatfish ray shark trout",
    "flowers": "orchid poppy rose sunflower tulip",
    "food containers": "bottle bowl can cup plate",
    "fruit and vegetables": "apple mushroom orange pear sweet_pepper",
    "household electrical devices": "clock keyboard lamp telephone television",
    "household furniture": "bed chair couch table wardrobe",
    "insects": "bee beetle butterfly caterpillar cockroach",
    "large carnivores": "bear leopard lion tiger wolf",
    "large man-made outdoor things": "bridge castle house road skyscraper",
    "large natural outdoor scenes": "cloud forest mountain plain sea",
    "large omnivores and herbivores": "camel cattle chimpanzee elephant kangaroo",
    "medium mammals": "fox porcupine possum raccoon skunk",
    "non-insect invertebrates": "crab lobster snail spider worm",
    "people": "baby boy girl man woman",
    "reptiles": "crocodile dinosaur lizard snake turtle",
    "small mammals": "hamster mouse rabbit shrew squirrel",
    "trees": "maple_tree oak_tree palm_tree pine_tree willow_tree",
    "vehicles 1": "bicycle bus motorcycle pickup_truck train",
    "vehicles 2": "lawn_mower rocket streetcar tank tractor",
}

CIFAR100_SUPERCLASSES: dict[str, str] = {
    fine: coarse for coarse, fines in _CIFAR100_COARSE.items() for fine in fines.split()
}


def superclasses_for(class_names: list[str]) -> dict[str, str] | None:
    """The superclass table that covers every class name, or None when none does."""
    if class_names and all(name in CIFAR100_SUPERCLASSES for name in class_names):
        return CIFAR100_SUPERCLASSES
    return None
