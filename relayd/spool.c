/* spool.c: not written yet. */
