/* smtp_data.c: not written yet. */
