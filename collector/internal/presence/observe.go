package presence

import (
	"slices"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Observation is what the agent saw at the moment of a check, as stored
// with the check and shown to analysts.
type Observation struct {
	// RemoteSessions are inbound remote-control sessions: catalog tools
	// (remote desktop, RMM) with an active session, and login sessions of
	// the Remote Desktop or screen-sharing kind.
	RemoteSessions []string `json:"remote_sessions"`
	// KVM are attached devices that look like an IP-KVM or a HID bridge.
	KVM []string `json:"kvm"`
	// Console are the users logged in at the console.
	Console []string `json:"console"`
	// SSH are open SSH login sessions (recorded, not a failure: a
	// developer may have one open while at the laptop).
	SSH []string `json:"ssh"`
}

// remoteCategories are the catalog categories whose active session means
// someone else operates the laptop.
var remoteCategories = []string{"remote_desktop", "rmm"}

// kvmCategories and kvmKinds are the peripheral findings that mean an
// IP-KVM (or a HID bridge that types for one) is attached.
var (
	kvmCategories = []string{"ip_kvm", "hid_bridge"}
	kvmKinds      = []string{"gadget_vendor", "capture_edid"}
)

// maxListed bounds each list of an observation (the snapshot is bounded
// already; this keeps the stored observation small).
const maxListed = 20

// Observe reads a snapshot (already validated, its peripherals matched by
// the collector's own KVM catalog) for what a presence check needs.
func Observe(sn *agentv1.HostSnapshot) Observation {
	o := Observation{RemoteSessions: []string{}, KVM: []string{}, Console: []string{}, SSH: []string{}}
	add := func(list *[]string, v string) {
		if len(*list) < maxListed && !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	for _, t := range sn.GetRemoteAccess().GetTools() {
		if t.GetActiveSession() && slices.Contains(remoteCategories, t.GetCategory()) {
			add(&o.RemoteSessions, t.GetToolId())
		}
	}
	for _, s := range sn.GetSessions().GetCurrent() {
		switch s.GetType() {
		case agentv1.LoginSession_TYPE_REMOTE_DESKTOP, agentv1.LoginSession_TYPE_SCREEN_SHARING:
			add(&o.RemoteSessions, "login:"+s.GetUser()+"@"+s.GetSourceAddress())
		case agentv1.LoginSession_TYPE_CONSOLE:
			add(&o.Console, s.GetUser())
		case agentv1.LoginSession_TYPE_SSH:
			add(&o.SSH, s.GetUser()+"@"+s.GetSourceAddress())
		}
	}
	for _, f := range sn.GetPeripherals().GetFindings() {
		if slices.Contains(kvmCategories, f.GetCategory()) || slices.Contains(kvmKinds, f.GetKind()) {
			add(&o.KVM, f.GetSource()+":"+f.GetDevice()+" ("+f.GetName()+")")
		}
	}
	return o
}

// Failure reasons of a check.
const (
	ReasonExpired             = "expired"
	ReasonWrongDevice         = "wrong_device"
	ReasonRemoteSessionActive = "remote_session_active"
	ReasonKVMAttached         = "kvm_attached"
	ReasonEgressMismatch      = "egress_mismatch"
	ReasonVerificationFailed  = "verification_failed"
)

// Judge decides a verified assertion with the agent's observation: the
// reasons it fails, none when it passes. browserIP is the address the
// assertion came from, agentIP the egress address of the agent's report.
func Judge(o Observation, browserIP, agentIP string) []string {
	reasons := []string{}
	if len(o.RemoteSessions) > 0 {
		reasons = append(reasons, ReasonRemoteSessionActive)
	}
	if len(o.KVM) > 0 {
		reasons = append(reasons, ReasonKVMAttached)
	}
	if browserIP == "" || browserIP != agentIP {
		reasons = append(reasons, ReasonEgressMismatch)
	}
	return reasons
}
