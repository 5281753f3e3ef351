/* orgdomain.c: not written yet. */
