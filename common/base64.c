/* base64.c: not written yet. */
