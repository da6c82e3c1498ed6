//go:build !linux && !darwin && !windows

package hostid

import (
	"errors"
	"testing"
)

func TestCollectLiveUnsupported(t *testing.T) {
	if _, err := Collect(t.Context(), "/"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Collect(/) error = %v, want errors.ErrUnsupported", err)
	}
}
