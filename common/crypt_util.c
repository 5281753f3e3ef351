/* crypt_util.c: not written yet. */
