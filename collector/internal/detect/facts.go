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
}
