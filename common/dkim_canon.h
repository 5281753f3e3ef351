/*
 * dkim_canon: DKIM canonicalization, RFC 6376 section 3.4, "simple" and
 * "relaxed", for header fields and for the body.
 *
 * Header fields are canonicalized one at a time into a struct buf.  The
 * body is canonicalized as a stream: feed it chunks of any size, split
 * anywhere (even inside a CRLF or a run of white space); the state that
 * spans chunks (a held CR, a held run of white space, held empty lines) is
 * kept in struct dkim_body.  The canonical bytes go straight into a
 * SHA-256 context (EVP_DigestUpdate), so the body is never buffered and a
 * body costs one hash pass; small pieces are gathered in a staging area
 * to keep the number of digest calls low.
 *
 * Line ends are CRLF only.  A CR not followed by LF and a LF not preceded
 * by CR are ordinary content bytes (relayd's DATA framer rejects or
 * normalizes them before signing, DESIGN.md invariant 3).  Trailing white
 * space on an unterminated last line is dropped by relaxed (as OpenDKIM
 * does; dkimpy keeps it), the only case where verifiers are known to
 * disagree.
 *
 * Pure: no I/O, no globals, no allocation.
 */
#ifndef RELAYD_DKIM_CANON_H
#define RELAYD_DKIM_CANON_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "buf.h"
#include "config.h"	/* enum dkim_canon */

#define DKIM_CANON_STAGE	4096	/* staging area for small pieces */

/* "simple" or "relaxed". */
const char	*dkim_canon_name(enum dkim_canon);

/*
 * Canonicalize one header field (RFC 6376 3.4.1 simple, 3.4.2 relaxed) and
 * append it to out.  field is the raw field: name, colon, value and any
 * folded continuation lines, normally ending in CRLF.  The terminating
 * CRLF is kept in the output if and only if field ends in CRLF (the
 * DKIM-Signature field being signed is hashed without it, RFC 6376 3.7).
 * Returns 0, or -1 if the field has no colon or out is full (out is then
 * left as it was).
 */
int	dkim_canon_header(enum dkim_canon, const char *field, size_t len,
	    struct buf *out);

/*
 * The name of a raw header field: the bytes before the colon without
 * trailing white space.  Returns 0 and sets *name and *namelen (pointing
 * into field), or -1 if there is no colon or the name is empty.
 */
int	dkim_canon_field_name(const char *field, size_t len,
	    const char **name, size_t *namelen);

/* Streaming body canonicalizer, RFC 6376 3.4.3 and 3.4.4.  Fields private. */
struct dkim_body {
	enum dkim_canon	 mode;
	EVP_MD_CTX	*md;		/* borrowed; canonical bytes go here */
	struct buf	*copy;		/* borrowed, NULL: a copy (tests) */
	uint64_t	 nblank;	/* held empty lines */
	uint64_t	 out_len;	/* canonical bytes produced so far */
	int		 cr;		/* a CR held at the end of a chunk */
	int		 wsp;		/* relaxed: a run of WSP held */
	int		 nonempty;	/* the current line has content */
	int		 error;		/* a digest update or copy failed */
	int		 done;		/* dkim_body_final() ran */
	size_t		 stage_len;
	unsigned char	 stage[DKIM_CANON_STAGE];
};

/*
 * Start a body.  md must be initialized for the digest (SHA-256) by the
 * caller and stays owned by it; copy, if not NULL, receives the canonical
 * bytes as well (for tests; it is bounded by its own maximum).
 */
void	dkim_body_init(struct dkim_body *, enum dkim_canon, EVP_MD_CTX *md,
	    struct buf *copy);
/* Feed n bytes.  Returns 0, or -1 after a digest or copy failure. */
int	dkim_body_update(struct dkim_body *, const void *, size_t n);
/*
 * End of body: apply the end-of-body rules (drop empty lines at the end,
 * add a CRLF to an unterminated last line; simple turns an empty body into
 * CRLF, relaxed leaves it empty) and flush everything into md.  The caller
 * then finalizes md.  Returns 0 or -1.
 */
int	dkim_body_final(struct dkim_body *);

#endif
