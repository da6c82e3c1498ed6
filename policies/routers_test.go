package policies

import "testing"

func TestRoutersCatalogLoads(t *testing.T) {
	c, err := Routers(FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Makers {
		if len(m.Sources) == 0 {
			t.Errorf("%s: no source", m.ID)
		}
	}
}

func TestRoutersCatalogValidateRejects(t *testing.T) {
	for name, y := range map[string]string{
		"upper case":   `makers: [{id: a, name: A, category: travel_router, sources: [x], prefixes: ["94:83:C4"]}]`,
		"short prefix": `makers: [{id: a, name: A, category: travel_router, sources: [x], prefixes: ["94:83"]}]`,
		"8 digits":     `makers: [{id: a, name: A, category: travel_router, sources: [x], prefixes: ["94:83:c4:12"]}]`,
		"not hex":      `makers: [{id: a, name: A, category: travel_router, sources: [x], prefixes: ["94:83:g4"]}]`,
		"duplicate":    `makers: [{id: a, name: A, category: travel_router, sources: [x], prefixes: ["94:83:c4"]}, {id: b, name: B, category: router_vpn, sources: [x], prefixes: ["94-83-c4"]}]`,
		"category":     `makers: [{id: a, name: A, category: router, sources: [x], prefixes: ["94:83:c4"]}]`,
		"no source":    `makers: [{id: a, name: A, category: travel_router, prefixes: ["94:83:c4"]}]`,
	} {
		if _, err := ParseRouters([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMatchGateway(t *testing.T) {
	c, err := ParseRouters([]byte(`makers:
  - {id: glinet, name: GL.iNet, category: travel_router, sources: [x], prefixes: ["94:83:c4"]}
  - {id: sub, name: Sub, category: router_vpn, sources: [x], prefixes: ["70:b3:d5:1", "70:b3:d5:12:3"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for mac, want := range map[string]string{
		"94:83:c4:a4:78:82":    "glinet",
		"94-83-C4-A4-78-82":    "glinet",
		"70:b3:d5:1f:00:01":    "sub",
		"70:b3:d5:12:34:56":    "sub",
		"70:b3:d5:2f:00:01":    "",
		"94:83:c5:a4:78:82":    "",
		"96:83:c4:a4:78:82":    "", // locally administered
		"94:83:c4":             "", // not a MAC
		"":                     "",
		"94:83:c4:a4:78:8g":    "",
		"94:83:c4:a4:78:82:00": "",
	} {
		got := MatchGateway(c, mac)
		if got.GetId() != want {
			t.Errorf("%q: %v, want %q", mac, got, want)
		}
	}
	if got := MatchGateway(c, "70:b3:d5:12:34:56"); got.GetPrefix() != "70:b3:d5:12:3" {
		t.Errorf("longest prefix: %v", got)
	}
	if MatchGateway(nil, "94:83:c4:a4:78:82") != nil {
		t.Error("nil catalog matched")
	}
	real, _ := Routers(FS())
	if MatchGateway(real, "94:83:c4:01:42:27").GetId() != "glinet" {
		t.Error("embedded catalog: GL.iNet gateway not matched")
	}
}

func FuzzMatchGateway(f *testing.F) {
	f.Add("94:83:c4:a4:78:82")
	f.Add("94-83-C4-A4-78-82")
	f.Add("::::::")
	f.Add("9")
	c, err := Routers(FS())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, mac string) {
		if m := MatchGateway(c, mac); m != nil {
			if h, ok := macHex(mac); !ok || len(h) != 12 {
				t.Fatalf("%q matched but is not a MAC", mac)
			}
		}
	})
}
