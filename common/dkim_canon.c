/* dkim_canon.c: not written yet. */
