/* dkim_sign.c: not written yet. */
