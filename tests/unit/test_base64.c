#include "tap.h"

int
main(void)
{
	ok(0, "test_base64 not written yet");
	return tap_done();
}
