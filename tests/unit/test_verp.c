#include "tap.h"

int
main(void)
{
	ok(0, "test_verp not written yet");
	return tap_done();
}
