package main

import (
	"fmt"

	"github.com/bonafide-sec/bonafide/collector/internal/gazetteer"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// places locates people's declared cities with the embedded gazetteer.
type places struct{ g *gazetteer.Gazetteer }

func (p places) Locate(country, region, city string) (string, float64, float64, error) {
	if city == "" {
		code, ok := p.g.CountryCode(country)
		if !ok {
			return "", 0, 0, fmt.Errorf("country %q is not an ISO 3166 code or country name", country)
		}
		return code, 0, 0, nil
	}
	c, err := p.g.Locate(country, region, city)
	if err != nil {
		return "", 0, 0, err
	}
	return c.Country, c.Lat, c.Lon, nil
}

// withPlaces makes the store locate declared cities.
func withPlaces(st *store.Store) error {
	g, err := gazetteer.Default()
	if err != nil {
		return fmt.Errorf("gazetteer: %w", err)
	}
	st.SetPlaces(places{g})
	return nil
}
