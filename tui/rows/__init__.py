"""Row models of the screens: plain classes (no widgets) that turn typed engine data into
what a table shows, with the filtering and sorting rules, so they are tested without an app."""
