/* smtp_cmd.c: not written yet. */
