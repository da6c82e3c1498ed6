package detect

import (
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Facts is what a rule sees. Rules with scope "device" see Device and Now;
// rules with scope "snapshot" also see Snapshot.
type Facts struct {
	Device   *DeviceFacts
	Snapshot *agentv1.HostSnapshot
	Now      time.Time
}

// DeviceFacts is the collector's own view of a device, derived from the
// store rather than from what the agent claims. In CEL it is the variable
// `device`, with the snake_case names of the cel tags.
type DeviceFacts struct {
	ID           string    `cel:"id"`
	Hostname     string    `cel:"hostname"`
	HardwareUUID string    `cel:"hardware_uuid"`
	SerialNumber string    `cel:"serial_number"`
	OSFamily     string    `cel:"os_family"`
	AgentID      string    `cel:"agent_id"`
	AgentVersion string    `cel:"agent_version"`
	FirstSeen    time.Time `cel:"first_seen"`
	LastSeen     time.Time `cel:"last_seen"`
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
	// InternalDisplayLastActive is when a snapshot last showed the built-in
	// panel in use; zero (0001-01-01) when never.
	InternalDisplayLastActive time.Time `cel:"internal_display_last_active"`
}

// SharedPeripheral is one peripheral serial seen on several devices.
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
