/* dkim_key.c: not written yet. */
