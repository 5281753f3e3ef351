/* num.c: not written yet. */
