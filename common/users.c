/* users.c: not written yet. */
