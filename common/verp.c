/* verp.c: not written yet. */
