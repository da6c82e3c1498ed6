package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
)

// TestDigest: a key set's digest is the SHA-256 of each key followed by
// its link byte, as the devices' stored keys digests were taken (a
// changed digest would re-key every device once), for sets small and
// larger than Digest's buffer on the stack.
func TestDigest(t *testing.T) {
	for _, n := range []int{0, 1, 12, 200} {
		var keys []DeviceKey
		h := sha256.New()
		for i := range n {
			k := DeviceKey{NewKey(KindPeripheral, fmt.Sprintf("usb 046d:c52b %08d", i)), i%3 != 0}
			keys = append(keys, k)
			h.Write([]byte(k.Key))
			if k.Link {
				h.Write([]byte{1})
			} else {
				h.Write([]byte{0})
			}
		}
		if got, want := Digest(keys), hex.EncodeToString(h.Sum(nil)[:16]); got != want {
			t.Errorf("%d keys: digest %s, want %s", n, got, want)
		}
	}
	if got := Digest([]DeviceKey{{"egress_ip 203.0.113.7", true}, {"bssid a4:2b:b0:11:22:33", false}}); got != "8061df61ca1b1239d6e34f94839f40c8" {
		t.Errorf("digest %s, want 8061df61ca1b1239d6e34f94839f40c8 (as stored before)", got)
	}
}
