/* smtp_server.c: not written yet. */
