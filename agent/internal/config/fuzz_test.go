package config

import "testing"

// FuzzParse: agent.yaml is read from a file anyone with the laptop can
// edit; Parse never panics and never returns a negative interval or size
// without an error. The seeds run as an ordinary test; `make fuzz` fuzzes.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"collector: collector.example.com:8443\nenroll_secret: bfe_x\nca_fingerprint: 5f0e\nscan_interval: 5m\n",
		"state_dir: /var/lib/bonafide\nspool_max_bytes: 1000000\nstart_delay: 0s\nsource_address: 192.0.2.1\n",
		"scan_interval: -5m\n",
		"start_delay: -1s\n",
		"bogus_key: 1\n",
		"collector: [a, b]\n",
		"scan_interval: 99999999999999999999h\n",
		"&a [*a, *a]\n",
		"",
		"---\n---\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		if c.ScanInterval < 0 || c.HeartbeatInterval < 0 || c.SpoolMaxBytes < 0 || c.StartDelay != nil && *c.StartDelay < 0 {
			t.Fatalf("negative setting accepted: %+v", c)
		}
	})
}
