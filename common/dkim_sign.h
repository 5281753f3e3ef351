/*
 * dkim_sign: a streaming DKIM signer (RFC 6376; rsa-sha256, and
 * ed25519-sha256 of RFC 8463) for one message and one or more keys.
 *
 * Call order, enforced by a state enum (a call out of order returns -1 and
 * changes nothing):
 *
 *   s = dkim_sign_new(params, n, err, errlen);	 one signature per params
 *   dkim_sign_header(s, field, len);		 each raw field, in order
 *   dkim_sign_end_headers(s);
 *   dkim_sign_body(s, chunk, len);		 any number of chunks
 *   dkim_sign_end_body(s);			 computes every signature
 *   dkim_sign_result(s, &out);			 appends the fields
 *   dkim_sign_free(s);
 *
 * or, for raw message bytes as they come (header and body split here, the
 * header section ends at the first empty line):
 *
 *   dkim_sign_feed(s, bytes, len); ...  dkim_sign_end_body(s);
 *
 * All signatures share one pass over the body: one canonicalizer and one
 * SHA-256 per distinct body canonicalization.  The header section is kept
 * (at most DKIM_SIGN_HEADER_MAX bytes); the body is not.
 *
 * The result is one DKIM-Signature field per params entry, in the order
 * given, each folded to the width and ending in CRLF, to be PREPENDED to
 * the message unchanged by the caller.  The signed bytes are the emitted
 * bytes: the field is laid out once with a placeholder b= of the final
 * length and hashed up to "b=", then laid out again with the signature;
 * the two layouts are checked to be identical.
 *
 * Tags, in this order: v=1 a= c= d= [i=] [q=dns/txt] s= t= [x=] h= bh= b=.
 * Never l=.  The automatic h= (RFC 6376 5.4, 5.4.1) lists:
 *   - From, Sender, Reply-To, Subject, Date, Message-ID, To, Cc,
 *     MIME-Version, Content-Type, Content-Transfer-Encoding, In-Reply-To,
 *     References and every List-* field: once more than they occur, so
 *     that adding one after signing breaks the signature ("oversigning");
 *   - Resent-Date, Resent-From, Resent-To, Resent-Cc: as often as present;
 *   - never Return-Path, Received, DKIM-Signature or anything else.
 *
 * Folding: the field is cut at tag boundaries (and between h= names); a
 * tag goes to a new line when its line would reach the width; base64 (bh=,
 * b=) that does not fit on a line of its own is cut to fill lines up to
 * the width.  Continuation lines begin with one space.  With width 59 this
 * reproduces the folding of RFC 8463 Appendix A.3.
 *
 * A signer is used by one thread at a time; keys may be shared by signers
 * on several threads (they are only read).  No I/O.  Two pieces of state
 * are process-wide: SHA-256 is fetched once, and each thread keeps the
 * private-key contexts of the last four keys it signed with (each holding
 * a reference to its key, so an old key lives on in a thread that signed
 * with it until four other keys have been used there, or the thread
 * ends), so a signer per message costs no more than one reused with
 * dkim_sign_reset().
 */
#ifndef RELAYD_DKIM_SIGN_H
#define RELAYD_DKIM_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "buf.h"
#include "config.h"	/* enum dkim_canon */
#include "dkim_key.h"	/* enum dkim_alg */

#define DKIM_SIGN_HEADER_MAX	(1024 * 1024)	/* header section bytes */
#define DKIM_SIGN_FIELDS_MAX	10000		/* header fields */
#define DKIM_SIGN_MAX_SIGS	8		/* signatures per message */
#define DKIM_FOLD_WIDTH		78	/* RFC 5322 2.1.1 SHOULD */
#define DKIM_FOLD_WIDTH_MIN	20
#define DKIM_FOLD_WIDTH_MAX	998	/* RFC 5322 2.1.1 MUST */

/*
 * One signature.  A zeroed struct with domain, selector and key set is the
 * default: relaxed/relaxed, t= now, no x=, no i=, no q=, automatic h=,
 * width 78.  The key policy (dkim_key_load()) is not applied here.
 */
struct dkim_sign_params {
	const char	*domain;	/* d=, required */
	const char	*selector;	/* s=, required */
	EVP_PKEY	*key;		/* RSA or Ed25519; the signer takes a
					 * reference of its own */
	enum dkim_canon	 canon_header;	/* c= header part; default relaxed */
	enum dkim_canon	 canon_body;	/* c= body part; default relaxed */
	time_t		 timestamp;	/* t=; 0: the time at dkim_sign_new() */
	uint64_t	 lifetime;	/* x= is t= plus this; 0: no x= */
	const char	*identity;	/* i=, NULL: none; "@d" or "local@d",
					 * its domain d= or a subdomain */
	const char	*header_list;	/* h= exactly as written ("from : to"),
					 * NULL: automatic */
	int		 query_tag;	/* write q=dns/txt (the default) */
	unsigned	 fold_width;	/* 0: DKIM_FOLD_WIDTH */
};

enum dkim_sign_state {
	DKIM_SIGN_HEADERS = 0,	/* taking header fields */
	DKIM_SIGN_BODY,		/* after the end of headers: body chunks */
	DKIM_SIGN_DONE,		/* signatures made: dkim_sign_result() */
	DKIM_SIGN_FAILED,	/* an error; only dkim_sign_free() is left */
};

struct dkim_sign;

/*
 * A signer for n signatures (1..DKIM_SIGN_MAX_SIGS).  The params and their
 * strings are copied.  Returns NULL with a reason in err on bad params
 * (bad d=, s= or i=, key neither RSA nor Ed25519, bad width, an h= list
 * without from) or out of memory.
 */
struct dkim_sign *dkim_sign_new(const struct dkim_sign_params *, size_t n,
	    char *err, size_t errlen);
void	dkim_sign_free(struct dkim_sign *);	/* NULL is ok */

/*
 * One raw header field: name, colon, value and folded continuation lines,
 * ending in CRLF.  State HEADERS only.  Returns 0, or -1 (order, no colon,
 * header section too large: the latter two fail the signer).
 */
int	dkim_sign_header(struct dkim_sign *, const char *field, size_t len);
/* The empty line.  HEADERS -> BODY.  Returns 0 or -1. */
int	dkim_sign_end_headers(struct dkim_sign *);
/* Body bytes, in chunks of any size.  State BODY only.  Returns 0 or -1. */
int	dkim_sign_body(struct dkim_sign *, const void *, size_t);
/*
 * Raw message bytes in chunks of any size: header fields are split here
 * (a line starting with SP or HTAB continues a field), the first empty
 * line ends the header section, the rest is body.  States HEADERS and
 * BODY.  Returns 0 or -1 (a header line without a colon or a continuation
 * line without a field fails the signer).
 */
int	dkim_sign_feed(struct dkim_sign *, const void *, size_t);
/*
 * End of the message: finish the body hashes and make every signature.
 * BODY -> DONE (also HEADERS -> DONE after dkim_sign_feed() for a message
 * without an empty line: it has an empty body).  Returns 0 or -1 (no From
 * field, signing failed: the signer fails).
 */
int	dkim_sign_end_body(struct dkim_sign *);
/*
 * Append the DKIM-Signature fields (each ending in CRLF, in params order)
 * to out.  State DONE.  Returns 0 or -1 (order, out full: out unchanged).
 */
int	dkim_sign_result(struct dkim_sign *, struct buf *out);

/* The bh= value (base64, NUL-terminated) of signature i; state DONE.
 * Returns 0 or -1. */
int	dkim_sign_body_hash(const struct dkim_sign *, size_t i, char *b64,
	    size_t cap);

/*
 * Make the signer ready for the next message with the same params (any
 * state, FAILED included): the header section, body hashes and results
 * are cleared; t= is taken again if params gave none.  Returns 0 or -1.
 */
int	dkim_sign_reset(struct dkim_sign *);

enum dkim_sign_state dkim_sign_state(const struct dkim_sign *);
const char	*dkim_sign_state_name(enum dkim_sign_state);
/* The reason for the last -1 ("" if none); lives as long as the signer. */
const char	*dkim_sign_error(const struct dkim_sign *);

/*
 * The whole sequence for a message held in memory: append the signature
 * fields for msg to out.  Returns 0, or -1 with a reason in err.
 */
int	dkim_sign_message(const struct dkim_sign_params *, size_t n,
	    const void *msg, size_t len, struct buf *out, char *err,
	    size_t errlen);

#endif
