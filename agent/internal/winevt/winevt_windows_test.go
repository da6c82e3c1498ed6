package winevt

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

// TestCallError: a call that failed without setting the last error is
// not reported as "Success."; a real error code is kept for errors.Is.
func TestCallError(t *testing.T) {
	if err := callError("EvtQuery(Security)", windows.ERROR_SUCCESS); strings.Contains(err.Error(), "uccess") {
		t.Errorf("errno 0: %v", err)
	}
	if err := callError("EvtQuery(Security)", nil); err == nil || strings.Contains(err.Error(), "uccess") {
		t.Errorf("no errno: %v", err)
	}
	err := callError("EvtNext", windows.ERROR_ACCESS_DENIED)
	if !errors.Is(err, windows.ERROR_ACCESS_DENIED) || !strings.HasPrefix(err.Error(), "winevt: EvtNext: ") {
		t.Errorf("access denied: %v", err)
	}
}
