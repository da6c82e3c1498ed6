package cases

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"time"
)

// Place is one place a laptop reported from: an entry of its egress
// history, located with GeoIP and the gazetteer, and how far it is from
// the city its person declared.
type Place struct {
	At           time.Time `json:"at"`
	DeviceID     string    `json:"device_id"`
	Hostname     string    `json:"hostname"`
	Person       string    `json:"person,omitempty"`
	IP           string    `json:"ip"`
	Place        string    `json:"place"`
	NetworkClass string    `json:"network_class"`
	NetworkName  string    `json:"network_name,omitempty"`
	Located      bool      `json:"located"`
	Latitude     float64   `json:"latitude,omitempty"`
	Longitude    float64   `json:"longitude,omitempty"`
	Declared     string    `json:"declared_place,omitempty"`
	// DistanceKM is the great-circle distance from the declared city, -1
	// when either place is not located.
	DistanceKM float64 `json:"distance_km"`
	Source     string  `json:"source"`
}

// Distance is the great-circle distance in km between two points given in
// degrees (haversine, mean Earth radius 6371 km).
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371.0
	rad := math.Pi / 180
	dlat, dlon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return math.Round(2 * r * math.Asin(math.Min(1, math.Sqrt(a))))
}

// WhereChart is the map-free "where" view: time runs left to right, the
// distance from the declared city bottom (0 km: at home) to top (on a
// square-root scale, so that 30 km and 10,000 km both show); each dot is a
// place a laptop reported from. Places whose distance is unknown sit on a
// band of their own above the chart. Coordinates are SVG user units.
type WhereChart struct {
	Width, Height int
	Dots          []whereDot
	YTicks        []WhereMark
	XTicks        []WhereMark
	Labels        []WhereMark // a label per distinct place, beside its first dot
	Empty         bool
	UnknownY      int
	PlotTop       int
	PlotBottom    int
	PlotLeft      int
	PlotRight     int
}

type whereDot struct {
	X, Y  int
	Class string
	Title string
}

// WhereMark is a text at a point of the chart: a tick or a place's label.
type WhereMark struct {
	X, Y int
	Text string
}

const (
	whereWidth  = 1000
	whereHeight = 320
	whereLeft   = 90
	whereRight  = 660
	whereTop    = 60
	whereBottom = 280
	whereBand   = 30 // the y of the unknown-distance band
	maxDots     = 400
)

// LayoutWhere lays places out (at most maxDots, the latest). It is a pure
// function of its argument.
func LayoutWhere(places []Place) WhereChart {
	c := WhereChart{Width: whereWidth, Height: whereHeight, UnknownY: whereBand, PlotTop: whereTop, PlotBottom: whereBottom,
		PlotLeft: whereLeft, PlotRight: whereRight, Empty: len(places) == 0}
	if len(places) > maxDots {
		places = places[len(places)-maxDots:]
	}
	if c.Empty {
		return c
	}
	first, last := places[0].At, places[0].At
	maxKM := 100.0
	for _, p := range places {
		if p.At.Before(first) {
			first = p.At
		}
		if p.At.After(last) {
			last = p.At
		}
		maxKM = math.Max(maxKM, p.DistanceKM)
	}
	top := niceCeil(maxKM)
	span := last.Sub(first)
	x := func(t time.Time) int {
		if span <= 0 {
			return (whereLeft + whereRight) / 2
		}
		return whereLeft + int(float64(whereRight-whereLeft)*float64(t.Sub(first))/float64(span))
	}
	y := func(km float64) int {
		return whereBottom - int(float64(whereBottom-whereTop)*math.Sqrt(km/top))
	}
	for _, km := range []float64{0, top / 100, top / 10, top / 4, top} {
		c.YTicks = append(c.YTicks, WhereMark{X: whereLeft - 8, Y: y(km), Text: fmt.Sprintf("%s km", thousands(km))})
	}
	c.XTicks = append(c.XTicks, WhereMark{X: whereLeft, Y: whereBottom + 20, Text: first.UTC().Format("2006-01-02 15:04")})
	if span > 0 {
		c.XTicks = append(c.XTicks, WhereMark{X: whereRight, Y: whereBottom + 20, Text: last.UTC().Format("2006-01-02 15:04") + " UTC"})
	}
	// Each place's label gives the range of its distances.
	lo, hi := map[string]float64{}, map[string]float64{}
	for _, p := range places {
		where := cmp.Or(p.Place, "location unknown")
		if p.DistanceKM < 0 {
			continue
		}
		if v, ok := lo[where]; !ok || p.DistanceKM < v {
			lo[where] = p.DistanceKM
		}
		hi[where] = math.Max(hi[where], p.DistanceKM)
	}
	labelled := map[string]bool{}
	for _, p := range places {
		d := whereDot{X: x(p.At), Class: "where-" + cmp.Or(p.NetworkClass, "unknown")}
		where := cmp.Or(p.Place, "location unknown")
		if p.DistanceKM >= 0 {
			d.Y = y(p.DistanceKM)
			d.Title = fmt.Sprintf("%s: %s from %s (%s), %s km from the declared %s, %s", p.Hostname, p.At.UTC().Format("2006-01-02 15:04 UTC"),
				p.IP, where, thousands(p.DistanceKM), p.Declared, cmp.Or(p.NetworkClass, "unknown")+" network")
		} else {
			d.Y, d.Class = whereBand, d.Class+" where-unknown"
			d.Title = fmt.Sprintf("%s: %s from %s (%s), distance unknown", p.Hostname, p.At.UTC().Format("2006-01-02 15:04 UTC"), p.IP, where)
		}
		c.Dots = append(c.Dots, d)
		if !labelled[where] && len(c.Labels) < 12 {
			labelled[where] = true
			text := where
			if v, ok := lo[where]; ok {
				text += " · " + thousands(v)
				if hi[where] > v {
					text += "–" + thousands(hi[where])
				}
				text += " km"
			}
			c.Labels = append(c.Labels, WhereMark{X: whereRight + 16, Y: d.Y + 4, Text: text})
		}
	}
	// Labels must not overlap: push each below the one above.
	slices.SortStableFunc(c.Labels, func(a, b WhereMark) int { return a.Y - b.Y })
	for i := 1; i < len(c.Labels); i++ {
		c.Labels[i].Y = max(c.Labels[i].Y, c.Labels[i-1].Y+14)
	}
	if n := len(c.Labels); n > 0 {
		c.Height = max(c.Height, c.Labels[n-1].Y+10)
	}
	return c
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// thousands formats a whole number of km with thin separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	return string(b)
}

var whereTmpl = template.Must(template.New("where").Parse(`<svg xmlns="http://www.w3.org/2000/svg" class="where" viewBox="0 0 {{.Width}} {{.Height}}" width="{{.Width}}" height="{{.Height}}" role="img" aria-labelledby="where-title where-desc">
<title id="where-title">Where the laptops were</title>
<desc id="where-desc">Each dot is a place a laptop reported from, left to right in time; the higher the dot, the farther from the city its person declared (0 km at the bottom line). Dots on the top band are places whose distance is unknown. The table beside lists the same places.</desc>
<line class="where-axis" x1="{{.PlotLeft}}" y1="{{.PlotBottom}}" x2="{{.PlotRight}}" y2="{{.PlotBottom}}"/>
<line class="where-axis" x1="{{.PlotLeft}}" y1="{{.PlotTop}}" x2="{{.PlotLeft}}" y2="{{.PlotBottom}}"/>
<text class="where-home" x="{{.PlotLeft}}" y="{{.PlotBottom}}" dx="4" dy="-4">declared city</text>
<text class="where-band" x="{{.PlotLeft}}" y="{{.UnknownY}}" dx="-8" text-anchor="end">unknown</text>
{{range .YTicks}}<text class="where-tick" x="{{.X}}" y="{{.Y}}" dy="4" text-anchor="end">{{.Text}}</text><line class="where-grid" x1="{{$.PlotLeft}}" y1="{{.Y}}" x2="{{$.PlotRight}}" y2="{{.Y}}"/>
{{end}}{{range .XTicks}}<text class="where-tick" x="{{.X}}" y="{{.Y}}" text-anchor="middle">{{.Text}}</text>
{{end}}{{range .Dots}}<circle class="where-dot {{.Class}}" cx="{{.X}}" cy="{{.Y}}" r="5"><title>{{.Title}}</title></circle>
{{end}}{{range .Labels}}<text class="where-label" x="{{.X}}" y="{{.Y}}">{{.Text}}</text>
{{end}}{{if .Empty}}<text x="{{.PlotLeft}}" y="{{.PlotTop}}" dx="10" dy="20">No egress history.</text>{{end}}
</svg>`))

// WhereSVG draws places as inline SVG (html/template escapes every
// string, so host and place names stay text).
func WhereSVG(places []Place) (template.HTML, error) {
	var b bytes.Buffer
	if err := whereTmpl.Execute(&b, LayoutWhere(places)); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil
}
