/* mailbox.c: not written yet. */
