package detect

import (
	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
)

// The sizes a snapshot the rules see keeps to: the collector refuses a
// report with a larger field (ingest's validation uses these), and the
// static cost bounds rely on them (boundedCost). A snapshot has no maps.
const (
	MaxSnapshotList   = 10000    // entries in any repeated field
	MaxSnapshotString = 4096     // bytes in any string field
	MaxSnapshotBytes  = 32 << 10 // bytes in any bytes field
)

// The sizes of the device and person facts within which more expressions
// run without the cost tracker (compiled.sized): the facts are built by
// the collector, and a device's lists (live agents, sanctioned tools, its
// cluster's co-signals, the person's sign-ins …) and strings (names,
// addresses, countries) are short. Facts past them are judged as before,
// with the tracker.
const (
	maxFactList   = 32
	maxFactString = 256
)

// boundedCost says whether cel-go's static estimate of a checked
// expression's cost is within costLimit whatever the facts are (always:
// the snapshot's lists, strings and bytes within the sizes above,
// everything else of any size), and whether it is when the device and
// person facts are within maxFactList and maxFactString (sized). cel-go
// derives its estimates and its runtime tracker's charges from one cost
// model, and tests that the estimate's maximum bounds what the tracker
// charges (common/cost/cost_bounds_test.go); the extensions declare their
// costs in it (cel.CostModel), and a function without one (ours) is
// charged 1 both ways. Such an
// expression can never reach the runtime limit, so it runs without the
// runtime cost tracker, which costs a rule's evaluation more than most of
// its own work (an allocation for most operators and one per expression).
// The runtime limit stays for every other expression: nested loops over
// snapshot lists, the custom functions' results, params not put in as
// literals, and facts past those sizes.
//
// An expression that names a variable of its own snapshot, device or
// person (a comprehension or cel.bind shadowing the facts) is bounded
// neither way: the estimator knows values by their path from the
// variable's name.
func boundedCost(env *cel.Env, a *cel.Ast) (always, sized bool) {
	facts := func(name string) bool { return name == "snapshot" || name == "device" || name == "person" }
	shadowed := len(celast.MatchDescendants(celast.NavigateAST(a.NativeRep()), func(e celast.NavigableExpr) bool {
		if e.Kind() != celast.ComprehensionKind {
			return false
		}
		c := e.AsComprehension()
		return facts(c.IterVar()) || facts(c.IterVar2()) || facts(c.AccuVar())
	})) > 0
	if shadowed {
		return false, false
	}
	est, err := env.EstimateCost(a, factSizes{})
	if err == nil && est.Max <= costLimit {
		return true, true
	}
	est, err = env.EstimateCost(a, factSizes{sized: true})
	return false, err == nil && est.Max <= costLimit
}

// factSizes is boundedCost's estimator: the sizes of the snapshot's
// values and, when sized, of the device's and person's.
type factSizes struct{ sized bool }

func (factSizes) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil // the standard estimate
}

func (s factSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	p := n.Path()
	if len(p) == 0 {
		return nil // unbounded
	}
	var list, str, bytes uint64
	switch {
	case p[0] == "snapshot":
		list, str, bytes = MaxSnapshotList, MaxSnapshotString, MaxSnapshotBytes
	case s.sized && (p[0] == "device" || p[0] == "person"):
		list, str, bytes = maxFactList, maxFactString, maxFactString
	default:
		return nil
	}
	var most uint64
	switch n.Type().Kind() {
	case types.ListKind:
		most = list
	case types.StringKind:
		most = str
	case types.BytesKind:
		most = bytes
	case types.MapKind:
		if p[0] == "snapshot" {
			most = 0 // a snapshot has none
		} else {
			most = list
		}
	default:
		return nil
	}
	return &cost.SizeEstimate{Min: 0, Max: most}
}

// sized says whether every string of the device's facts that CEL may
// read, its person's (PersonFacts) included, is at most maxFactString
// bytes and every list at most maxFactList entries. It runs on every
// evaluation, so it reads the fields by name: a walk by reflection cost
// more than most rules once the person has a few sign-ins.
// TestSizedFactsFields sets each field past the sizes in turn, so a
// field added to the facts and not read here fails it.
func (d *DeviceFacts) sized() bool {
	return short(d.ID, d.Hostname, d.HardwareUUID, d.SerialNumber, d.ClaimsDevice, d.OSFamily, d.AgentID, d.AgentVersion,
		d.EgressIP, d.Person) &&
		shortList(d.LiveAgentIDs) && shortList(d.SanctionedTools) &&
		each(d.SharedPeripherals, (*SharedPeripheral).sized) && each(d.UsernameConflicts, (*UsernameConflict).sized) &&
		d.Egress.sized() && d.PreviousEgress.sized() && d.Declared.sized() && d.Cluster.sized() &&
		(d.PersonFacts == nil || d.PersonFacts.sized())
}

func (p *PersonFacts) sized() bool {
	return short(p.Email) && each(p.Signins, (*Signin).sized) && each(p.EgressHistory, (*LaptopEgress).sized)
}

func (s *Signin) sized() bool {
	return short(s.Provider, s.EventID, s.Result, s.Reason, s.IP, s.UserAgent, s.DeviceID, s.MFAFactor, s.MFADevice,
		s.ProviderRisk, s.LocationSource, s.TravelFrom) &&
		s.Egress.sized() && each(s.Laptops, (*LaptopPosition).sized) && shortList(s.SharedWith)
}

func (l *LaptopPosition) sized() bool {
	return short(l.DeviceID, l.Hostname, l.IP, l.Country, l.City, l.NetworkClass)
}

func (l *LaptopEgress) sized() bool {
	return short(l.DeviceID, l.Hostname, l.IP, l.Country, l.City, l.NetworkClass)
}

func (c *Cluster) sized() bool {
	return short(c.ID, c.NetworkClass) && shortList(c.Hostnames) && shortList(c.Links) && shortList(c.Evidence) &&
		shortList(c.CoSignals) && shortList(c.Flagged)
}

func (e *Egress) sized() bool {
	return short(e.IP, e.Status, e.Country, e.Region, e.City, e.Org, e.NetworkClass, e.NetworkName, e.TimeZone)
}

func (d *Declared) sized() bool {
	return short(d.Email, d.Country, d.Region, d.City, d.Timezone, d.Binding)
}

func (s *SharedPeripheral) sized() bool {
	return short(s.Key, s.Location) && shortList(s.Devices) && shortList(s.Hostnames)
}

func (u *UsernameConflict) sized() bool {
	return short(u.Person, u.Username) && shortList(u.Devices) && shortList(u.Hostnames)
}

// short says whether each of ss is at most maxFactString bytes.
func short(ss ...string) bool {
	for _, s := range ss {
		if len(s) > maxFactString {
			return false
		}
	}
	return true
}

// shortList says whether l has at most maxFactList entries, each short.
func shortList(l []string) bool { return len(l) <= maxFactList && short(l...) }

// each says whether l has at most maxFactList entries, each sized.
func each[T any](l []T, sized func(*T) bool) bool {
	if len(l) > maxFactList {
		return false
	}
	for i := range l {
		if !sized(&l[i]) {
			return false
		}
	}
	return true
}
