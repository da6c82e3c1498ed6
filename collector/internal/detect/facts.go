package detect

import (
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Facts is what a rule sees. Rules with scope "device" see Device and Now;
// rules with scope "snapshot" also see Snapshot.
type Facts struct {
	Device   *DeviceFacts
	Snapshot *agentv1.HostSnapshot
	// Person is what the identity providers say about the device's
	// person (nil reads as an empty person).
	Person *PersonFacts
	Now    time.Time
	// NeverReported says the device enrolled and never reported: only the
	// rules with before_first_report run on it (Rule.BeforeFirstReport).
	NeverReported bool
}

// DeviceFacts is the collector's own view of a device, derived from the
// store rather than from what the agent claims. In CEL it is the variable
// `device`, with the snake_case names of the cel tags.
type DeviceFacts struct {
	ID           string `cel:"id"`
	Hostname     string `cel:"hostname"`
	HardwareUUID string `cel:"hardware_uuid"`
	SerialNumber string `cel:"serial_number"`
	// ClaimsDevice is the id of the active device whose hardware identity
	// (SMBIOS UUID and serial) this device claimed when it enrolled; empty
	// when it claimed none or an admin approved the claim.
	ClaimsDevice string `cel:"claims_device"`
	// EnrolledWith counts the devices enrolled around this one's
	// enrollment (a burst of fake laptops dilutes a farm's keys).
	EnrolledWith EnrolledWith `cel:"enrolled_with"`
	OSFamily     string       `cel:"os_family"`
	AgentID      string       `cel:"agent_id"`
	AgentVersion string       `cel:"agent_version"`
	FirstSeen    time.Time    `cel:"first_seen"`
	LastSeen     time.Time    `cel:"last_seen"`
	// ReportInterval is how often the device is expected to report
	// (its configured heartbeat interval).
	ReportInterval time.Duration `cel:"report_interval"`
	// LiveAgentIDs are the non-revoked agents that reported for this
	// hardware identity within the liveness window, most recent first.
	LiveAgentIDs []string `cel:"live_agent_ids"`
	// DroppedReports is the agent's count of reports dropped from a full spool.
	DroppedReports int64 `cel:"dropped_reports"`
	// ClockSkew is the receive time minus the agent's creation time of the
	// latest report (positive when the agent clock is behind).
	ClockSkew time.Duration `cel:"clock_skew"`
	// EgressIP is the address the latest report came from.
	EgressIP string `cel:"egress_ip"`
	// Person is the email of the person the device is bound to (by its
	// hardware serial in the HR export), empty when unbound.
	Person string `cel:"person"`
	// SanctionedTools are the remote-access catalog ids the allowlist
	// (allowlist/sanctioned.yaml) sanctions on this device.
	SanctionedTools []string `cel:"sanctioned_tools"`
	// SharedPeripherals are this device's peripherals (USB HID devices,
	// external displays, by ids and serial) that other devices reported in
	// their latest snapshot within the last 7 days.
	SharedPeripherals []SharedPeripheral `cel:"shared_peripherals"`
	// UsernameConflicts are the people (of the HR export) whose user name
	// this device reports and other active devices report too: such a
	// user name binds none of them to the person.
	UsernameConflicts []UsernameConflict `cel:"username_conflicts"`
	// InternalDisplayLastActive is when a snapshot last showed the built-in
	// panel in use; zero (0001-01-01) when never.
	InternalDisplayLastActive time.Time `cel:"internal_display_last_active"`
	// Egress is where the latest report came from; PreviousEgress the
	// egress before the address last changed (ip empty when none).
	Egress         Egress `cel:"egress"`
	PreviousEgress Egress `cel:"previous_egress"`
	// Declared is where the bound person says they are (empty when the
	// device is not bound to a person).
	Declared Declared `cel:"declared"`
	// EgressDistanceKm is the distance between the egress location and the
	// declared city; -1 when either is unknown.
	EgressDistanceKm float64 `cel:"egress_distance_km"`
	// Activity summarises the device's 14-day activity histogram against
	// the declared work hours and zone (see collector/internal/activity).
	Activity activity.Stats `cel:"activity"`
	// PersonActivity is the same over all devices of the bound person
	// (zero when unbound).
	PersonActivity activity.Stats `cel:"person_activity"`
	// TravelKmh is the speed needed to get from the previous egress
	// location to the current one in the time between them; -1 when
	// unknown or there was no move.
	TravelKmh float64 `cel:"travel_kmh"`
	// Cluster is the cluster of devices this one is linked with (by
	// egress address, gateway MAC, BSSID, peripheral serials or
	// remote-tool ids; see collector/internal/fleet); id empty when none.
	Cluster Cluster `cel:"cluster"`
	// PersonFacts are the bound person's identity-provider facts; rules
	// see them as the variable `person`, not as a device field. Facts.Person,
	// when set, wins.
	PersonFacts *PersonFacts `cel:"-" json:"-"`
}

// Cluster is what a rule sees of the device's cluster.
type Cluster struct {
	ID string `cel:"id"`
	// Devices is the number of live devices in the cluster, this one
	// included; Hostnames their host names.
	Devices   int64    `cel:"devices"`
	Hostnames []string `cel:"hostnames"`
	// People is the number of distinct people the devices belong to:
	// distinct bound people plus each unbound device (whose owner is
	// unknown); Unbound the number of unbound devices.
	People  int64 `cel:"people"`
	Unbound int64 `cel:"unbound_devices"`
	// Links are the kinds of key that link the devices (egress_ip,
	// gateway_mac, bssid, peripheral, remote_tool); Evidence the kinds
	// shared by two or more devices, linking or not (lan too).
	Links    []string `cel:"links"`
	Evidence []string `cel:"evidence"`
	// SharedNetwork is true when devices share a network (egress address,
	// gateway MAC or BSSID), not only hardware or a tool id.
	SharedNetwork bool `cel:"shared_network"`
	// NetworkClass is the egress network class most devices report from.
	NetworkClass string `cel:"network_class"`
	// CoSignals are the categories (rule files: remote_access,
	// peripherals, location, activity, media, network) of the members'
	// open alerts of medium severity or more, or of any severity when the
	// rule is tagged "co-signal"; fleet and agent rules excluded;
	// CoSignalDevices how many members have one.
	CoSignals       []string `cel:"co_signals"`
	CoSignalDevices int64    `cel:"co_signal_devices"`
	// Flagged are the other members with an open high or critical alert
	// (fleet rules excluded), by host name.
	Flagged []string `cel:"flagged"`
	// Score is the farm score (fleet.FarmScore), 0–100.
	Score int64 `cel:"score"`
	// AgeHours is how long the cluster has existed: colleagues who meet
	// in a hotel part again within days, a farm's laptops stay.
	AgeHours float64 `cel:"age_hours"`
}

// Egress is the collector's view of where a device's reports come from:
// the public address it sees (after trusted proxies) and what the GeoIP
// databases and the networks catalog say about it.
type Egress struct {
	IP string `cel:"ip" json:"ip,omitempty"`
	// Status is "ok" when a GeoIP database knows the address, otherwise
	// why the location is unknown ("no GeoIP database loaded", "address
	// not in the GeoIP databases", "private address").
	Status      string  `cel:"status" json:"status,omitempty"`
	Country     string  `cel:"country" json:"country,omitempty"` // ISO 3166-1 alpha-2
	Region      string  `cel:"region" json:"region,omitempty"`
	City        string  `cel:"city" json:"city,omitempty"`
	HasLocation bool    `cel:"has_location" json:"has_location,omitempty"` // a city's coordinates known (not a country's centroid)
	Latitude    float64 `cel:"latitude" json:"latitude,omitempty"`
	Longitude   float64 `cel:"longitude" json:"longitude,omitempty"`
	ASN         int64   `cel:"asn" json:"asn,omitempty"`
	Org         string  `cel:"org" json:"org,omitempty"`
	// NetworkClass is hosting, vpn, mobile, residential, office, private
	// or unknown (policies/catalog/networks.yaml and declared offices);
	// NetworkName names the matching entry.
	NetworkClass string `cel:"network_class" json:"network_class,omitempty"`
	NetworkName  string `cel:"network_name" json:"network_name,omitempty"`
	// TimeZone is the IANA zone of the egress location (from the GeoIP
	// database) and UTCOffsetSeconds its offset at evaluation time; ""
	// and 0 when unknown.
	TimeZone         string `cel:"timezone" json:"timezone,omitempty"`
	UTCOffsetSeconds int64  `cel:"utc_offset_seconds" json:"-"`
	// Since is, for the current egress, the first report from it; for the
	// previous one, the last report from it.
	Since time.Time `cel:"since" json:"since,omitempty"`
}

// Declared is a person's declared location from the HR export.
type Declared struct {
	Email    string `cel:"email"`
	Country  string `cel:"country"`
	Region   string `cel:"region"`
	City     string `cel:"city"`
	Timezone string `cel:"timezone"`
	// Located is true when the city was found in the gazetteer; then
	// Latitude and Longitude are its coordinates.
	Located   bool    `cel:"located"`
	Latitude  float64 `cel:"latitude"`
	Longitude float64 `cel:"longitude"`
	// UTCOffsetSeconds is the declared time zone's offset at evaluation
	// time (0 when no time zone was declared; check timezone).
	UTCOffsetSeconds int64 `cel:"utc_offset_seconds"`
	// Binding is how the device is bound to the person: device_serial or
	// username.
	Binding string `cel:"binding"`
	// HireDate is the person's hire date from the HR export (midnight UTC;
	// zero, timestamp(0) in CEL, when not given) and DaysSinceHire the
	// whole days from it to the evaluation time (0 on the day of hire and
	// before it; -1 when the hire date is unknown).
	HireDate      time.Time `cel:"hire_date"`
	DaysSinceHire int64     `cel:"days_since_hire"`
}

// SharedPeripheral is one peripheral serial seen on several devices.
// EnrolledWith counts, when a device enrolled, the devices enrolled from
// the same address within the 24 hours before and with the same secret
// within the hour before, itself included.
type EnrolledWith struct {
	SameAddress int64 `cel:"same_address"`
	SameSecret  int64 `cel:"same_secret"`
}

// UsernameConflict is one person's user name reported by this device and
// by other active devices.
type UsernameConflict struct {
	Person   string `cel:"person"` // the person's email
	Username string `cel:"username"`
	// Devices are the other devices' ids, Hostnames their host names.
	Devices   []string `cel:"devices"`
	Hostnames []string `cel:"hostnames"`
}

type SharedPeripheral struct {
	// Key names the peripheral, e.g. "usb 0x413c:0x2113 CN0F4G7M" or
	// "display DEL 0xa0c4 HX4TQ93".
	Key string `cel:"key"`
	// Location is the USB location or display connector on this device.
	Location string `cel:"location"`
	// Devices are the other devices' ids, Hostnames their host names.
	Devices   []string `cel:"devices"`
	Hostnames []string `cel:"hostnames"`
}
