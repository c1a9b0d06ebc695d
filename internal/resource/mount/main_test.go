package mount

import (
	"testing"

	"go.uber.org/goleak"
)

// Every command runs through runexec and every background helper is waited
// for: nothing may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
