package detect

import "time"

// PersonFacts is what the identity providers (collector/internal/idp) say
// about the person a device is bound to, joined to where the person's
// laptops were. In CEL it is the variable `person`; it is empty (email
// "") when the device is not bound to a person.
type PersonFacts struct {
	Email string `cel:"email"`
	// Signins are the person's recent sign-ins (the last SigninFactsWindow,
	// at most MaxSigninFacts), newest first.
	Signins []Signin `cel:"signins"`
	// EgressHistory is where the person's laptops reported from over the
	// same span (each entry from its `at` on), newest first.
	EgressHistory []LaptopEgress `cel:"egress_history"`
}

// SigninFactsWindow is how far back person.signins reach;
// MaxSigninFacts bounds how many there are.
const (
	SigninFactsWindow = 72 * time.Hour
	MaxSigninFacts    = 100
	// LaptopWindow is the widest gap between a sign-in and a laptop
	// report that Signin.Laptops lists: rules narrow it with their own
	// window param.
	LaptopWindow = 12 * time.Hour
)

// Signin is one identity-provider sign-in, enriched by the collector.
type Signin struct {
	Provider string    `cel:"provider" json:"provider"` // okta, entra or google
	EventID  string    `cel:"event_id" json:"event_id"`
	At       time.Time `cel:"at" json:"at"`
	// Result is success, failure or challenge (a step-up was asked);
	// Reason the provider's words for a failure.
	Result    string `cel:"result" json:"result"`
	Reason    string `cel:"reason" json:"reason,omitempty"`
	IP        string `cel:"ip" json:"ip,omitempty"`
	UserAgent string `cel:"user_agent" json:"user_agent,omitempty"`
	// DeviceID is the provider's id of the signing-in device (Entra
	// deviceDetail.deviceId, Okta device.id); MFAFactor the factor type;
	// MFADevice the factor's own device or phone (an authenticator
	// device id, a masked phone number), where the provider says.
	DeviceID  string `cel:"device_id" json:"device_id,omitempty"`
	MFAFactor string `cel:"mfa_factor" json:"mfa_factor,omitempty"`
	MFADevice string `cel:"mfa_device" json:"mfa_device,omitempty"`
	// ProviderProxy is the provider's own verdict that the address is a
	// proxy or anonymizer (Okta securityContext.isProxy, an Entra
	// anonymizedIPAddress risk event); ProviderRisk its risk words.
	ProviderProxy bool   `cel:"provider_proxy" json:"provider_proxy,omitempty"`
	ProviderRisk  string `cel:"provider_risk" json:"provider_risk,omitempty"`
	// Egress is where the address is, by the collector's own GeoIP
	// databases and networks catalog; where those know nothing, the
	// provider's geolocation fills country, city and coordinates and
	// LocationSource says "provider" ("collector" otherwise, "" when
	// nobody knows).
	Egress         Egress `cel:"egress" json:"egress"`
	LocationSource string `cel:"location_source" json:"location_source,omitempty"`
	// Laptops are the person's laptops' reports nearest to the sign-in,
	// one per laptop that reported within LaptopWindow of it.
	Laptops []LaptopPosition `cel:"laptops" json:"laptops,omitempty"`
	// TravelKmh is the speed needed from the person's previous located
	// successful sign-in to this one (-1 when unknown); TravelKm and
	// TravelFrom the distance and the previous sign-in's address.
	TravelKmh  float64 `cel:"travel_kmh" json:"travel_kmh"`
	TravelKm   float64 `cel:"travel_km" json:"travel_km"`
	TravelFrom string  `cel:"travel_from" json:"travel_from,omitempty"`
	// SharedWith are the other people (emails) whose sign-ins used this
	// sign-in's MFA device or provider device id.
	SharedWith []string `cel:"shared_with" json:"shared_with,omitempty"`
}

// LaptopPosition is where one of the person's laptops was when it
// reported nearest to a sign-in.
type LaptopPosition struct {
	DeviceID     string  `cel:"device_id" json:"device_id"`
	Hostname     string  `cel:"hostname" json:"hostname"`
	IP           string  `cel:"ip" json:"ip"`
	Country      string  `cel:"country" json:"country,omitempty"`
	City         string  `cel:"city" json:"city,omitempty"`
	NetworkClass string  `cel:"network_class" json:"network_class,omitempty"`
	HasLocation  bool    `cel:"has_location" json:"has_location,omitempty"`
	Latitude     float64 `cel:"latitude" json:"latitude,omitempty"`
	Longitude    float64 `cel:"longitude" json:"longitude,omitempty"`
	// GapMinutes is the time between the sign-in and that report (never
	// negative); DistanceKm the distance between the laptop's and the
	// sign-in's locations, -1 when either is unknown. SameIP says the
	// laptop reported from the sign-in's own address.
	GapMinutes float64 `cel:"gap_minutes" json:"gap_minutes"`
	DistanceKm float64 `cel:"distance_km" json:"distance_km"`
	SameIP     bool    `cel:"same_ip" json:"same_ip,omitempty"`
}

// LaptopEgress is one entry of a laptop's egress history.
type LaptopEgress struct {
	DeviceID     string    `cel:"device_id" json:"device_id"`
	Hostname     string    `cel:"hostname" json:"hostname"`
	At           time.Time `cel:"at" json:"at"`
	IP           string    `cel:"ip" json:"ip"`
	Country      string    `cel:"country" json:"country,omitempty"`
	City         string    `cel:"city" json:"city,omitempty"`
	NetworkClass string    `cel:"network_class" json:"network_class,omitempty"`
	HasLocation  bool      `cel:"has_location" json:"has_location,omitempty"`
	Latitude     float64   `cel:"latitude" json:"latitude,omitempty"`
	Longitude    float64   `cel:"longitude" json:"longitude,omitempty"`
}
