/* listener.c: not written yet. */
