package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/fleet"
)

// clusterWindow is how recently a device must have reported to count in
// a cluster.
const clusterWindow = 7 * 24 * time.Hour

// fleetCategory is the category of the fleet rules (rules/fleet.yaml):
// their alerts make a cluster suspected and are not its co-signals, so
// that they cannot feed each other.
const fleetCategory = "fleet"

// agentCategory is the category of the rules about the agent itself
// (rules/agent.yaml). They are not co-signals either: every laptop that is
// switched off, asleep in a bag or on hotel Wi-Fi goes silent, and three
// colleagues travelling together must not become a farm because their
// laptops slept. A co-signal says how or from where a laptop is operated.
const agentCategory = "agent"

// coSignalTag on a rule makes its alerts co-signals of a cluster even at
// low severity: findings too common to raise more than a low alert alone
// (a virtual camera, rules/media.yaml) that still say how a laptop is
// operated when they sit in a shared house.
const coSignalTag = "co-signal"

// Cluster is a group of linked devices, as GET /api/v1/farms shows it.
type Cluster struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"` // active or dissolved
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Score is the farm score (fleet.FarmScore). Suspected is true when a
	// fleet rule (rules/fleet.yaml) has an open alert on a member.
	Score     int  `json:"score"`
	Suspected bool `json:"suspected"`
	Devices   int  `json:"devices"`
	// People counts distinct bound people plus each unbound device.
	People        int      `json:"people"`
	Unbound       int      `json:"unbound_devices"`
	Emails        []string `json:"people_emails"`
	SharedNetwork bool     `json:"shared_network"`
	NetworkClass  string   `json:"network_class"`
	// Links are the kinds of key linking the devices.
	Links []string `json:"links"`
	// Evidence are the keys two or more members share.
	Evidence []SharedKey `json:"evidence"`
	// CoSignals are the categories of members' open alerts (medium or
	// more, fleet rules excluded).
	CoSignals       []string        `json:"co_signals"`
	CoSignalDevices int             `json:"co_signal_devices"`
	Members         []ClusterMember `json:"members"`
	// Timeline is the cluster's history (GetCluster only).
	Timeline []ClusterEvent `json:"timeline,omitempty"`

	// flagged are the members with an open high or critical alert of a
	// rule that is not a fleet rule.
	flagged map[string]bool
}

// SharedKey is a key several members hold.
type SharedKey struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
	// Link says whether it links devices (fleet.Linking).
	Link    bool     `json:"link"`
	Devices []string `json:"devices"`
}

// ClusterMember is one device of a cluster.
type ClusterMember struct {
	DeviceID     string `json:"device_id"`
	Hostname     string `json:"hostname"`
	Person       string `json:"person"`
	EgressIP     string `json:"egress_ip"`
	NetworkClass string `json:"network_class"`
	RiskScore    int    `json:"risk_score"`
	// Alerts are the rule ids of the member's open or acknowledged alerts.
	Alerts []string `json:"alerts"`
}

// ClusterEvent is one entry of a cluster's timeline.
type ClusterEvent struct {
	At time.Time `json:"at"`
	// Kind is formed (detail: the founding devices), joined or left
	// (detail: device_id and the cluster it came from or went to, "" for
	// none), or dissolved.
	Kind   string         `json:"kind"`
	Detail map[string]any `json:"detail"`
}

// summary is what the clusters row keeps of the view: all but the
// timeline and the row's own columns.
func (c *Cluster) summary() string {
	b, _ := json.Marshal(struct {
		*Cluster
		Timeline  []ClusterEvent `json:"timeline,omitempty"`
		CreatedAt time.Time      `json:"created_at,omitzero"`
		UpdatedAt time.Time      `json:"updated_at,omitzero"`
		Status    string         `json:"status,omitempty"`
	}{Cluster: c})
	return string(b)
}

// updateKeys recomputes a device's key set from its snapshot keys and
// current egress. When the set changed it replaces the device's keys and
// re-clusters the device and the members of its former cluster. It
// returns the ids of the clusters whose membership changed, whose reads
// it keeps in views for judging the device and their members next, which
// refreshes their rows (see judge and applyClusters).
func (s *Store) updateKeys(ctx context.Context, tx wtx, deviceID string, egress detect.Egress, now time.Time, views clusterViews) ([]string, error) {
	current := map[string]string{}
	seeds, err := s.newKeys(ctx, tx, []keysOf{{id: deviceID, egress: egress}}, current)
	if err != nil || len(seeds) == 0 {
		return nil, err
	}
	return s.recluster(ctx, tx, seeds, current, now, views)
}

// keysOf is a device whose key set a report may have changed, with the
// egress it reported from. keys, when not nil, are its new keys as
// prejudge found them (prejudged.keys), digest their digest, made of the
// snapshot keys snapKeys and sign-in keys signins as the device's row
// keeps them once the report is stored; set says that the report's
// UPDATE of the device set their digest (the device was at the version
// read: the keys are these, and they changed).
type keysOf struct {
	id                        string
	egress                    detect.Egress
	keys                      []fleet.DeviceKey
	digest, snapKeys, signins string
	set                       bool
}

// newKeys is updateKeys without the re-clustering, for several devices:
// where a device's key set changed, it replaces the keys and returns the
// devices to re-cluster from (the device and the members of its cluster),
// adding their current cluster to current. The keys of all are read in one
// round trip and replaced in another on PostgreSQL's ingest writer (see
// wtx.send), where a group's moving reports (storeMoving) took two round
// trips each inside the cluster lock: no device's read depends on
// another's replacement (each reads its own keys and its cluster's
// members, whom only re-clustering moves). On PostgreSQL, the keys
// prejudge found are replaced without a read, in the first round trip
// (replaceKeysPostgres): a second is left for the others, if any.
func (s *Store) newKeys(ctx context.Context, tx wtx, devs []keysOf, current map[string]string) ([]string, error) {
	var seeds []string
	// from adds the device and the members of its cluster (members, a
	// JSON array) to the seeds.
	from := func(id, clusterID, members string) error {
		ids := []string{id}
		if clusterID != "" {
			var in []string
			if err := json.Unmarshal([]byte(members), &in); err != nil {
				return fmt.Errorf("cluster members: %w", err)
			}
			ids = append(ids, in...)
		}
		for _, id := range ids {
			current[id] = clusterID
			if !slices.Contains(seeds, id) {
				seeds = append(seeds, id)
			}
		}
		return nil
	}
	pg := s.dialect == Postgres
	query := keysQuerySQLite
	if pg {
		query = keysQueryPostgres
	}
	reads := make([]keysRead, len(devs))
	read := func(i int) sent {
		r := &reads[i]
		return sent{query: s.q(query), args: []any{devs[i].id}, read: oneRow(&r.snapKeys, &r.digest, &r.clusterID, &r.signins, &r.members)}
	}
	knowns := make([]knownKeys, len(devs))
	// Each round trip sends the statements of the devices pending, in
	// their order: the known keys' replacements (on PostgreSQL) and the
	// others' reads, then the replacements those reads call for and the
	// reads of the devices whose known keys turned out stale.
	var stmts []sent
	var pending []int
	isKnown := make([]bool, len(devs))
	for i, dev := range devs {
		if pg && dev.keys != nil {
			isKnown[i] = true
			stmts = append(stmts, replaceKeysPostgres(dev, &knowns[i]))
		} else {
			stmts = append(stmts, read(i))
		}
		pending = append(pending, i)
	}
	for len(stmts) > 0 {
		if err := tx.send(ctx, stmts); err != nil {
			return nil, fmt.Errorf("device keys: %w", err)
		}
		stmts = nil
		var next []int
		for _, i := range pending {
			dev := devs[i]
			if isKnown[i] {
				k := knowns[i]
				if k.guarded == 0 { // read as the others
					isKnown[i] = false
					stmts, next = append(stmts, read(i)), append(next, i)
				} else if k.changed > 0 {
					if err := from(dev.id, k.clusterID, k.members); err != nil {
						return nil, err
					}
				}
				continue
			}
			r := reads[i]
			keys, d := dev.keys, "" // d: the digest to set, "" when set
			if !dev.set {
				var snap []fleet.Key
				json.Unmarshal([]byte(r.snapKeys), &snap)
				keys = fleet.Keys(snap, dev.egress.IP, dev.egress.NetworkClass, signinKeys(r.signins)...)
				if d = fleet.Digest(keys); d == r.digest {
					continue
				}
			}
			if pg {
				// Made of the row just read: the statement's guard holds.
				known := keysOf{id: dev.id, keys: keys, digest: cmp.Or(d, dev.digest), snapKeys: r.snapKeys, signins: r.signins}
				stmts = append(stmts, replaceKeysPostgres(known, &knownKeys{}))
			} else if err := s.replaceKeys(ctx, tx, dev.id, keys, d); err != nil {
				return nil, err
			}
			if err := from(dev.id, r.clusterID, r.members); err != nil {
				return nil, err
			}
		}
		pending = next
	}
	return seeds, nil
}

// keysRead is what newKeys reads of a device (keysQuerySQLite,
// keysQueryPostgres).
type keysRead struct{ snapKeys, digest, clusterID, signins, members string }

// knownKeys is what replaceKeysPostgres returns: whether the keys were
// those of the device's row (guarded, 0 or 1; else nothing was written),
// whether they changed (changed > 0), and the device's cluster and its
// members (a JSON array, as keysQueryPostgres reads them).
type knownKeys struct {
	guarded, changed   int64
	clusterID, members string
}

// replaceKeysPostgres is replaceKeys on PostgreSQL, for a device's keys
// as newKeys found them (dev.keys, with their digest): one statement,
// which newKeys sends with the other devices' in one round trip. It
// replaces the keys while the device's row still holds the snapshot and
// sign-in keys they were made of (dev.snapKeys, dev.signins), so that it
// needs no read before it for keys prejudge found (prejudged.keys): a
// device's keys change only with its own reports and sign-ins, while its
// version moves whenever its cluster changes. It writes only what
// changed, as replaceKeys does, in one data-modifying WITH whose parts all
// see the rows as they were before it, the keys the device holds (held)
// against the new ones (fresh), none changing a row another changes: it
// deletes the keys gone, updates the link of a key kept with another (a
// statement cannot delete a row and insert one with the same primary
// key), inserts the new ones, takes the holders of the linking keys gone
// down, deleting the link_keys rows they leave with none, and adds the new
// linking keys' holders. It sets the digest where the report's UPDATE did
// not (setsKeys), and returns what newKeys read (see knownKeys). It was
// two statements, which inserted all the keys again (a key kept
// conflicting and left) and deleted those not among them, after a read of
// the keys: a report that moves its device between two access points
// changes one key or two of twenty.
func replaceKeysPostgres(dev keysOf, into *knownKeys) sent {
	names, links := make([]string, len(dev.keys)), make([]int64, len(dev.keys))
	for i, k := range dev.keys {
		names[i], links[i] = string(k.Key), int64(boolInt(k.Link))
	}
	return sent{query: `WITH cur AS (SELECT cluster_id FROM devices WHERE id = $1 AND snapshot_keys = $3 AND signin_keys = $4),
		fresh AS (SELECT n.key, n.link FROM unnest($5::text[], $6::bigint[]) AS n(key, link) WHERE EXISTS (SELECT FROM cur)),
		held AS (SELECT k.key, k.link FROM device_keys k WHERE k.device_id = $1 AND EXISTS (SELECT FROM cur)),
		dg AS (UPDATE devices SET keys_digest = $2 WHERE id = $1 AND keys_digest <> $2 AND EXISTS (SELECT FROM cur) RETURNING 1),
		gone AS (DELETE FROM device_keys k WHERE k.device_id = $1 AND k.key IN (SELECT key FROM held) AND k.key NOT IN (SELECT key FROM fresh)
			RETURNING 1),
		flip AS (UPDATE device_keys k SET link = f.link FROM fresh f WHERE k.device_id = $1 AND k.key = f.key AND k.link <> f.link RETURNING 1),
		ins AS (INSERT INTO device_keys (device_id, key, link) SELECT $1, f.key, f.link FROM fresh f WHERE f.key NOT IN (SELECT key FROM held)
			RETURNING 1),
		unlinked AS (SELECT h.key FROM held h WHERE h.link = 1 AND NOT EXISTS (SELECT FROM fresh f WHERE f.key = h.key AND f.link = 1)),
		linked AS (SELECT f.key FROM fresh f WHERE f.link = 1 AND NOT EXISTS (SELECT FROM held h WHERE h.key = f.key AND h.link = 1)),
		dec AS (UPDATE link_keys SET holders = holders - 1 WHERE key IN (SELECT key FROM unlinked) AND holders > 1),
		del AS (DELETE FROM link_keys WHERE key IN (SELECT key FROM unlinked) AND holders <= 1),
		inc AS (INSERT INTO link_keys (key, holders) SELECT key, 1 FROM linked ON CONFLICT (key) DO UPDATE SET holders = link_keys.holders + 1)
		SELECT (SELECT count(*) FROM cur),
			(SELECT count(*) FROM dg) + (SELECT count(*) FROM gone) + (SELECT count(*) FROM flip) + (SELECT count(*) FROM ins),
			COALESCE((SELECT cluster_id FROM cur), ''),
			COALESCE((SELECT json_agg(m.id ORDER BY m.id)::text FROM devices m JOIN cur ON cur.cluster_id <> '' AND m.cluster_id = cur.cluster_id), '[]')`,
		args: []any{dev.id, dev.digest, dev.snapKeys, dev.signins, names, links},
		read: oneRow(&into.guarded, &into.changed, &into.clusterID, &into.members)}
}

// The device's keys (updateKeys) with, as a JSON array sorted, the ids of
// the devices of its cluster (none when it is in none), which re-clustering
// starts from when its keys changed: read in the same statement, they were
// a round trip more inside the cluster lock.
const (
	keysColumns     = `SELECT d.snapshot_keys, d.keys_digest, d.cluster_id, d.signin_keys, `
	keysQuerySQLite = keysColumns + `(SELECT json_group_array(id) FROM (SELECT m.id FROM devices m
		WHERE d.cluster_id <> '' AND m.cluster_id = d.cluster_id ORDER BY m.id)) FROM devices d WHERE d.id = ?`
	keysQueryPostgres = keysColumns + `COALESCE((SELECT json_agg(m.id ORDER BY m.id)::text FROM devices m
		WHERE d.cluster_id <> '' AND m.cluster_id = d.cluster_id), '[]')
		FROM devices d WHERE d.id = ?`
)

// replaceKeys replaces a device's keys, whose digest is digest ("": set
// already), and keeps link_keys' holder counts. Only the keys that
// changed are written: a key the device keeps (with the same link) keeps
// its row and its holder count. A report that moves its device between
// clusters changes one key or two of twenty, and deleting and inserting
// all of them, with their holder counts down and up again, was most of
// the rows the report wrote.
// The statements are a fixed number whatever the number of keys (plus
// one per 300 new keys): each is a round trip on PostgreSQL, inside the
// cluster lock every such report waits for.
func (s *Store) replaceKeys(ctx context.Context, tx wtx, deviceID string, keys []fleet.DeviceKey, digest string) error {
	if digest != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET keys_digest = ? WHERE id = ?`, digest, deviceID); err != nil {
			return fmt.Errorf("device keys: %w", err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT key, link FROM device_keys WHERE device_id = ?`, deviceID)
	if err != nil {
		return fmt.Errorf("device keys: %w", err)
	}
	old, err := scanRows(rows, func(sc scanner) (fleet.DeviceKey, error) {
		var k fleet.DeviceKey
		var link int
		err := sc.Scan(&k.Key, &link)
		k.Link = link == 1
		return k, err
	})
	if err != nil {
		return fmt.Errorf("device keys: %w", err)
	}
	gone, added := keysChange(old, keys), keysChange(keys, old)
	if len(gone) > 0 {
		var all, linking []string
		for _, k := range gone {
			all = append(all, string(k.Key))
			if k.Link {
				linking = append(linking, string(k.Key))
			}
		}
		if len(linking) > 0 {
			in, list := s.inList(linking)
			for _, q := range []string{
				`UPDATE link_keys SET holders = holders - 1 WHERE key ` + in,
				`DELETE FROM link_keys WHERE holders <= 0 AND key ` + in,
			} {
				if _, err := tx.ExecContext(ctx, q, list...); err != nil {
					return fmt.Errorf("device keys: %w", err)
				}
			}
		}
		in, list := s.inList(all)
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_keys WHERE device_id = ? AND key `+in, append([]any{deviceID}, list...)...); err != nil {
			return fmt.Errorf("device keys: %w", err)
		}
	}
	if len(added) == 0 {
		return nil
	}
	// added are distinct (fleet.Keys), as the primary key wants, and
	// none is among the device's rows left (those with the same key
	// and another link are gone).
	var linking []string
	for chunk := range slices.Chunk(added, 300) {
		args := make([]any, 0, 3*len(chunk))
		for _, k := range chunk {
			args = append(args, deviceID, string(k.Key), boolInt(k.Link))
			if k.Link {
				linking = append(linking, string(k.Key))
			}
		}
		rows := strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(chunk)), ", ")
		if _, err := tx.Tx.ExecContext(ctx, `INSERT INTO device_keys (device_id, key, link) VALUES `+rows, args...); err != nil {
			return fmt.Errorf("device keys: %w", err)
		}
	}
	if len(linking) == 0 {
		return nil
	}
	// WHERE true: SQLite reads ON after a bare FROM as a join's.
	list, _ := json.Marshal(linking)
	if _, err := tx.ExecContext(ctx, `INSERT INTO link_keys (key, holders) SELECT value, 1 FROM json_each(?) WHERE true
		ON CONFLICT (key) DO UPDATE SET holders = link_keys.holders + 1`, string(list)); err != nil {
		return fmt.Errorf("link keys: %w", err)
	}
	return nil
}

// keysChange returns the keys of a that b does not hold with the same
// link.
func keysChange(a, b []fleet.DeviceKey) []fleet.DeviceKey {
	held := make(map[fleet.DeviceKey]bool, len(b))
	for _, k := range b {
		held[k] = true
	}
	var out []fleet.DeviceKey
	for _, k := range a {
		if !held[k] {
			out = append(out, k)
		}
	}
	return out
}

// inList is a test of membership in ids for a column (the fragment to
// follow it) and its arguments. On SQLite the ids are one argument, a
// JSON array, so that the statement has one text whatever their number
// and is prepared once (see wtx): a list of placeholders made a statement
// per length, parsed and planned on every call. PostgreSQL, whose driver
// prepares each text once per connection, keeps the placeholders: for an
// array argument (inArray) it planned the devices' rows read
// (rowsStatement) again on every call, a millisecond each under load, its
// plan for the few ids given cheaper than its generic plan for an array
// of unknown length.
func (s *Store) inList(ids []string) (string, []any) {
	if s.dialect == Postgres {
		return `IN (` + marks(len(ids)) + `)`, anys(ids)
	}
	in, list := s.inArray(ids)
	return in, []any{list}
}

// inArray is inList with the ids one argument on PostgreSQL as well, a
// text[], so that the statement has one text there too, prepared and
// planned as one statement: for the component search, whose generic plan
// PostgreSQL keeps, where a placeholder an id made a statement per
// frontier size, each prepared on every connection and planned again.
func (s *Store) inArray(ids []string) (string, any) {
	if s.dialect == Postgres {
		return `= ANY(CAST(CAST(? AS TEXT) AS TEXT[]))`, textArray(ids)
	}
	list, _ := json.Marshal(ids)
	return `IN (SELECT value FROM json_each(?))`, string(list)
}

// marks returns n comma-separated placeholders.
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// components finds the devices linked with the seeds, breadth first over
// the linking keys, among devices that reported within the cluster window
// (the seeds themselves need not have), and returns them split into
// components, each sorted, a seed linked with nothing alone in its own. A
// key held by more than fleet.MaxHolders devices links only its
// fleet.MaxHolders most senior holders (first seen first, then by id, as
// fleet.Components). A component found to hold more than fleet.MaxHolders
// devices is searched no further. It adds the current cluster of the
// devices it links to clusters.
//
// The search is one breadth-first search for all the seeds, each level
// done on the rows of one statement for the whole frontier (plus one per
// crowded key met), and the links it finds are split into components by
// union-find: a search per seed cost a statement per level per seed, each
// a round trip on PostgreSQL inside the cluster lock, and the members of a
// cluster a moving device leaves are all seeds. Each statement reads two
// levels (linkRows): the next frontier is most often among the devices
// the first level links, and its rows are then at hand, so that a search
// of two levels (a moving device's farm found from its members) is one
// statement, not two. Each component is the one a search from any of its
// seeds alone finds; where such searches overlap (a seed that no longer
// reports links the devices of another seed's component, which do not
// link it back), their union.
func (s *Store) components(ctx context.Context, tx wtx, seeds []string, now time.Time, clusters map[string]string) ([][]string, error) {
	parent := map[string]string{}
	size := map[string]int{}
	find := func(id string) string {
		for parent[id] != id {
			parent[id] = parent[parent[id]]
			id = parent[id]
		}
		return id
	}
	union := func(a, b string) {
		if a, b = find(a), find(b); a != b {
			if size[a] < size[b] {
				a, b = b, a
			}
			parent[b], size[a] = a, size[a]+size[b]
		}
	}
	var frontier, next []string
	add := func(id string) {
		if _, ok := parent[id]; !ok {
			parent[id], size[id] = id, 1
			next = append(next, id)
		}
	}
	for _, id := range seeds {
		add(id)
	}
	frontier, next = next, nil
	crowded := map[string]map[string]bool{} // crowded key → its most senior holders, whether each links
	since := micros(now.Add(-clusterWindow))
	// The second level of the last statement: the rows of the devices in
	// ahead (nil: none read).
	var aheadRows []linkRow
	var ahead map[string]bool
	for {
		// A component past fleet.MaxHolders devices is searched no
		// further, as a search from one seed stopped.
		frontier = slices.DeleteFunc(frontier, func(id string) bool { return size[find(id)] > fleet.MaxHolders })
		if len(frontier) == 0 {
			break
		}
		inFrontier := make(map[string]bool, len(frontier))
		for _, id := range frontier {
			inFrontier[id] = true
		}
		var rows []linkRow
		if ahead != nil && !slices.ContainsFunc(frontier, func(id string) bool { return !ahead[id] }) {
			rows, aheadRows, ahead = aheadRows, nil, nil
		} else {
			var err error
			if rows, aheadRows, ahead, err = s.linkRows(ctx, tx, frontier, inFrontier, since); err != nil {
				return nil, err
			}
		}
		// The rows hold the keys of more devices than the frontier's
		// when they were read ahead: only the frontier's count.
		frontierKey := map[string]bool{}
		for _, r := range rows {
			if !r.crowded && inFrontier[r.device] {
				frontierKey[r.key] = true
			}
		}
		type holding struct{ device, key string }
		// A key links its holders that report and the frontier's (a
		// seed may no longer report: it links the others, as a search
		// from it found them, but none of theirs links it).
		linked := map[string][]string{}
		var held []holding
		for _, r := range rows {
			switch {
			case r.crowded:
				if inFrontier[r.device] {
					held = append(held, holding{r.device, r.key})
				}
				continue
			case !frontierKey[r.key]:
				continue
			}
			if r.live {
				clusters[r.device] = r.cluster
			}
			if r.live || inFrontier[r.device] {
				linked[r.key] = append(linked[r.key], r.device)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(linked)) {
			for _, id := range linked[k] {
				add(id)
				union(linked[k][0], id)
			}
		}
		for _, h := range held {
			linking, ok := crowded[h.key]
			if !ok {
				var err error
				if linking, err = s.seniorHolders(ctx, tx, h.key, since); err != nil {
					return nil, err
				}
				crowded[h.key] = linking
			}
			if _, ok := linking[h.device]; ok {
				for _, id := range slices.Sorted(maps.Keys(linking)) {
					if linking[id] {
						add(id)
						union(h.device, id)
					}
				}
			}
		}
		frontier, next = next, nil
	}
	groups := map[string][]string{}
	for id := range parent {
		r := find(id)
		groups[r] = append(groups[r], id)
	}
	out := make([][]string, 0, len(groups))
	for _, g := range groups {
		slices.Sort(g)
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out, nil
}

// linkRow is a row of the component search (linkRows): a holder of a
// linking key held by more than one device and at most fleet.MaxHolders,
// with its cluster and whether it links (it reported within the window
// and is not revoked); or (crowded) a crowded key, held by more, and one
// of the searched devices that holds it.
type linkRow struct {
	key, device, cluster string
	live, crowded        bool
}

// linkRows reads the rows of a level of the component search from the
// frontier (the devices in inFrontier), and the rows of the next level
// from the devices they link (ahead: the live holders outside the
// frontier), which the next level needs when its frontier is among them.
// A key only one device holds (a peripheral's serial, its own access
// point) links nothing: each level leaves it before joining its holders.
//
// The frontier is one parameter (inArray), so that the statement is one
// text whatever the frontier's size.
func (s *Store) linkRows(ctx context.Context, tx wtx, frontier []string, inFrontier map[string]bool, since int64) (rows, aheadRows []linkRow, ahead map[string]bool, err error) {
	in, list := s.inArray(frontier)
	res, err := tx.QueryContext(ctx, s.linkQuery(in), list, since, fleet.MaxHolders, list, fleet.MaxHolders, since, fleet.MaxHolders, fleet.MaxHolders)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cluster: %w", err)
	}
	defer res.Close()
	ahead = map[string]bool{}
	for res.Next() {
		var level, part, live int
		var r linkRow
		if err := res.Scan(&level, &part, &r.key, &r.device, &r.cluster, &live); err != nil {
			return nil, nil, nil, err
		}
		r.live, r.crowded = live == 1, part == 1
		if level == 1 {
			aheadRows = append(aheadRows, r)
			continue
		}
		rows = append(rows, r)
		if r.live && !r.crowded && !inFrontier[r.device] {
			ahead[r.device] = true
		}
	}
	return rows, aheadRows, ahead, res.Err()
}

// linkQuery is linkRows' statement: the frontier's shared linking keys
// (f) with their holders (h), and the shared linking keys of the live
// holders outside the frontier (a) with theirs; the crowded keys of each
// are parts of their own. Each set of keys is read once for both of its
// parts, which read them each. in is the frontier's test (inArray).
func (s *Store) linkQuery(in string) string {
	const keys = `SELECT k.device_id, k.key, l.holders FROM device_keys k JOIN link_keys l ON l.key = k.key AND l.holders > 1
		WHERE k.link = 1 AND `
	const holders = `SELECT DISTINCT o.device_id, s.key, d.cluster_id, CASE WHEN d.revoked_at = 0 AND d.last_seen > ? THEN 1 ELSE 0 END AS live
		FROM (SELECT DISTINCT key FROM %[1]s WHERE holders <= ?) s JOIN device_keys o ON o.key = s.key AND o.link = 1
		JOIN devices d ON d.id = o.device_id`
	return s.q(`WITH f AS MATERIALIZED (` + keys + `k.device_id ` + in + `),
		h AS MATERIALIZED (` + fmt.Sprintf(holders, "f") + `),
		a AS MATERIALIZED (` + keys + `k.device_id IN (SELECT device_id FROM h WHERE live = 1) AND NOT k.device_id ` + in + `)
		SELECT 0, 0, key, device_id, cluster_id, live FROM h
		UNION ALL SELECT 0, 1, key, device_id, '', 0 FROM f WHERE holders > ?
		UNION ALL SELECT 1, 0, key, device_id, cluster_id, live FROM (` + fmt.Sprintf(holders, "a") + `) ah
		UNION ALL SELECT 1, 1, key, device_id, '', 0 FROM a WHERE holders > ?`)
}

// seniorHolders returns the fleet.MaxHolders most senior holders of a
// linking key, each with whether it reported since (and is not revoked):
// the devices the key links.
func (s *Store) seniorHolders(ctx context.Context, tx wtx, key string, since int64) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT o.device_id, d.revoked_at = 0 AND d.last_seen > ? FROM device_keys o
		JOIN devices d ON d.id = o.device_id
		WHERE o.key = ? AND o.link = 1 ORDER BY d.first_seen, o.device_id LIMIT ?`), since, key, fleet.MaxHolders)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		var live bool
		if err := rows.Scan(&id, &live); err != nil {
			return nil, err
		}
		out[id] = live
	}
	return out, rows.Err()
}

// recluster finds the clusters of the seed devices again and records
// every change of membership. known holds the current cluster of the
// devices whose cluster the caller read (the seeds at least); recluster
// fills in the others'. It returns the ids of the clusters that changed
// (dissolved ones included), keeping their reads in views, their rows
// not yet refreshed (see applyClusters).
func (s *Store) recluster(ctx context.Context, tx wtx, seeds []string, known map[string]string, now time.Time, views clusterViews) ([]string, error) {
	groups, err := s.components(ctx, tx, seeds, now, known)
	if err != nil {
		return nil, err
	}
	// Every device involved, with its current cluster: read here for
	// those neither the caller nor components read it of (holders of
	// crowded keys).
	current := map[string]string{}
	var unknown []string
	for _, id := range slices.Sorted(slices.Values(slices.Concat(groups...))) {
		if c, ok := known[id]; ok {
			current[id] = c
		} else {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		in, list := s.inList(unknown)
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, cluster_id FROM devices WHERE id `+in), list...)
		if err != nil {
			return nil, fmt.Errorf("recluster: %w", err)
		}
		for rows.Next() {
			var id, c string
			if err := rows.Scan(&id, &c); err != nil {
				rows.Close()
				return nil, err
			}
			current[id] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return s.applyClusters(ctx, tx, groups, current, now, views)
}

// applyClusters gives each group of two or more devices a cluster id
// (keeping the one most members had), moves devices whose cluster changed
// with timeline entries, and reads the changed clusters into views. It
// leaves their rows to the caller, which judges their members next and
// refreshes the rows after (reevaluateClusters), or refreshes them at once
// when it judges nothing (refreshViews): refreshing here as well wrote
// each changed cluster's row, and bumped every member's version, twice a
// report. current holds every involved device's cluster id before the
// change.
func (s *Store) applyClusters(ctx context.Context, tx wtx, groups [][]string, current map[string]string, now time.Time, views clusterViews) ([]string, error) {
	p := planClusters(groups, current)
	changed := map[string]bool{}
	if tx.conn != nil {
		return s.applyPipelined(ctx, tx, p, now, changed, views)
	}
	if _, err := s.moveDevices(ctx, tx, p, p.movers(), now, changed); err != nil {
		return nil, err
	}
	out := slices.Sorted(maps.Keys(changed))
	for _, id := range out {
		var err error
		if views[id], err = s.readCluster(ctx, tx, id, now, true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// applyPipelined is applyClusters on a transaction that can send
// statements together (PostgreSQL's ingest writer): the moves with their
// timeline entries (movesStatement), the reads of the changed clusters and
// their members' rows, which judging them reads next (reevaluateClusters),
// and the rows of the devices the plan leaves in no cluster, go in one
// round trip, where they were one each, inside the cluster lock. The reporting
// device's facts are read next (deviceFacts): it is one of the members or
// one of those left alone, so its row was one round trip more. Nothing
// between here and that judging writes a row of the members but the
// reporting device's, which is not judged again.
func (s *Store) applyPipelined(ctx context.Context, tx wtx, p *clusterPlan, now time.Time, changed map[string]bool, views clusterViews) ([]string, error) {
	var stmts []sent
	if movers := p.movers(); len(movers) > 0 {
		stmts = append(stmts, s.movesStatement(p, movers, now, changed))
	}
	out := slices.Sorted(maps.Keys(changed))
	read := func(r *clusterRead) func(resultRows) error {
		return func(rows resultRows) (err error) {
			r.rows, err = scanMembers(rows)
			return err
		}
	}
	for _, id := range out {
		r, query, args := s.clusterStatement(id, now, true)
		views[id] = r
		members, margs := s.membersStatement(id, maxReevaluate+1)
		stmts = append(stmts, sent{query: query, args: args, read: r.scan}, sent{query: members, args: margs, read: read(r)})
	}
	var alone []string
	for d, to := range p.next {
		if to == "" {
			alone = append(alone, d)
		}
	}
	if len(alone) > 0 {
		slices.Sort(alone)
		r := &clusterRead{}
		views[""] = r
		query, args := s.rowsStatement(alone[:min(len(alone), maxReevaluate+1)])
		stmts = append(stmts, sent{query: query, args: args, read: read(r)})
	}
	if len(stmts) == 0 {
		return out, nil
	}
	if err := tx.pipeline(ctx, stmts); err != nil {
		return nil, fmt.Errorf("recluster: %w", err)
	}
	return out, nil
}

// refreshViews refreshes the rows of the clusters ids from their reads in
// views (see applyClusters), for a caller that judges none of their
// members.
func (s *Store) refreshViews(ctx context.Context, tx wtx, views clusterViews, ids []string, now time.Time) error {
	reads := make([]*clusterRead, len(ids))
	for i, id := range ids {
		reads[i] = views[id]
	}
	return s.refreshClusters(ctx, tx, reads, now)
}

// clusterPlan is where re-clustering puts devices.
type clusterPlan struct {
	current, next map[string]string // device → cluster ("" for none), before and after
	// formed are the new clusters with their founding devices; announced
	// those whose "formed" entry is written.
	formed    map[string][]string
	announced map[string]bool
}

// planClusters gives each group of two or more devices a cluster id
// (keeping the one most members had); the other devices of current leave
// their cluster.
func planClusters(groups [][]string, current map[string]string) *clusterPlan {
	slices.SortFunc(groups, func(a, b []string) int { return cmp.Or(len(b)-len(a), strings.Compare(a[0], b[0])) })
	var multi [][]int
	var ids []string
	old := []string{}
	for _, g := range groups {
		if len(g) < 2 {
			continue
		}
		idx := make([]int, len(g))
		for i, d := range g {
			idx[i] = len(ids)
			ids = append(ids, d)
			old = append(old, current[d])
		}
		multi = append(multi, idx)
	}
	p := &clusterPlan{current: current, next: map[string]string{}, formed: map[string][]string{}, announced: map[string]bool{}}
	fresh := map[string]bool{}
	names := fleet.AssignIDs(multi, old, func() string {
		id := newClusterID()
		fresh[id] = true
		return id
	})
	for d := range current {
		p.next[d] = ""
	}
	for gi, g := range multi {
		for _, i := range g {
			p.next[ids[i]] = names[gi]
			if fresh[names[gi]] {
				p.formed[names[gi]] = append(p.formed[names[gi]], ids[i])
			}
		}
	}
	return p
}

// movers lists the devices whose cluster changes, sorted.
func (p *clusterPlan) movers() []string {
	var out []string
	for d, to := range p.next {
		if p.current[d] != to {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// moveDevices moves the devices ids to their planned clusters with
// timeline entries ("formed" with the first device moved into a new
// cluster), adding the clusters changed to changed. A device no longer in
// the cluster the plan started from (a report moved it since) is left
// where it is. It returns how many devices moved. The entries are written
// together after the moves, in one statement: a statement each was two
// more round trips a moving device on PostgreSQL.
func (s *Store) moveDevices(ctx context.Context, tx wtx, p *clusterPlan, ids []string, now time.Time, changed map[string]bool) (int, error) {
	moved := 0
	var events []clusterEventRow
	for _, d := range ids {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE devices SET cluster_id = ?, version = version + 1 WHERE id = ? AND cluster_id = ?`), p.next[d], d, p.current[d])
		if err != nil {
			return 0, fmt.Errorf("recluster: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		moved++
		events = p.moveEvents(d, changed, events)
	}
	return moved, s.clusterEvents(ctx, tx, now, events...)
}

// moveEvents appends to events the timeline entries of device d's move
// as planned and adds the clusters it changes to changed.
func (p *clusterPlan) moveEvents(d string, changed map[string]bool, events []clusterEventRow) []clusterEventRow {
	from, to := p.current[d], p.next[d]
	if from != "" {
		changed[from] = true
		events = append(events, clusterEventRow{from, "left", map[string]any{"device_id": d, "to": to}})
	}
	if to == "" {
		return events
	}
	changed[to] = true
	if founders, ok := p.formed[to]; ok {
		if !p.announced[to] {
			p.announced[to] = true
			events = append(events, clusterEventRow{to, "formed", map[string]any{"devices": founders}})
		}
	} else {
		events = append(events, clusterEventRow{to, "joined", map[string]any{"device_id": d, "from": from}})
	}
	return events
}

// movesStatement is moveDevices in one statement (PostgreSQL), which
// applyPipelined sends with the reads that follow: it moves the devices
// ids whose cluster is still the one the plan started from and writes the
// timeline entries of those that moved (a "formed" entry when any of its
// founding devices moved). It adds to changed the clusters the moves
// change when all are made: under the cluster lock, the plan was made
// from what the transaction read, so they are; else a cluster is
// re-judged for nothing. The moves were a round trip each, and their
// entries waited for them.
func (s *Store) movesStatement(p *clusterPlan, ids []string, now time.Time, changed map[string]bool) sent {
	froms, tos := make([]string, len(ids)), make([]string, len(ids))
	var by, clusters, kinds, details []string // the entries, each with the devices whose move makes it (JSON)
	var events []clusterEventRow
	for i, d := range ids {
		froms[i], tos[i] = p.current[d], p.next[d]
		n := len(events)
		events = p.moveEvents(d, changed, events)
		for _, e := range events[n:] {
			devs := []string{d}
			if e.kind == "formed" {
				devs = p.formed[e.cluster]
			}
			b, _ := json.Marshal(devs)
			detail, _ := json.Marshal(e.detail)
			by, clusters, kinds, details = append(by, string(b)), append(clusters, e.cluster), append(kinds, e.kind), append(details, string(detail))
		}
	}
	return sent{query: `WITH mv AS (UPDATE devices d SET cluster_id = m.t, version = d.version + 1
			FROM unnest($1::text[], $2::text[], $3::text[]) AS m(id, f, t) WHERE d.id = m.id AND d.cluster_id = m.f RETURNING d.id)
		INSERT INTO cluster_events (cluster_id, at, kind, detail)
		SELECT e.c, $4, e.k, e.d FROM unnest($5::text[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY AS e(devs, c, k, d, n)
		WHERE EXISTS (SELECT 1 FROM mv WHERE jsonb_exists(e.devs::jsonb, mv.id)) ORDER BY e.n`,
		args: []any{ids, froms, tos, micros(now), by, clusters, kinds, details}}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func newClusterID() string {
	var b [6]byte
	rand.Read(b[:])
	return "c-" + hex.EncodeToString(b[:])
}

func (s *Store) clusterEvent(ctx context.Context, tx wtx, clusterID string, at time.Time, kind string, detail map[string]any) error {
	return s.clusterEvents(ctx, tx, at, clusterEventRow{clusterID, kind, detail})
}

// clusterEventRow is one timeline entry of a cluster (see ClusterEvent).
type clusterEventRow struct {
	cluster, kind string
	detail        map[string]any
}

// clusterEvents writes timeline entries at the time at, in their order,
// up to 500 entries a statement. Like replaceKeys' inserts, the
// statement is built for the number of entries and bypasses the
// prepared-statement cache.
func (s *Store) clusterEvents(ctx context.Context, tx wtx, at time.Time, events ...clusterEventRow) error {
	for _, st := range s.eventStatements(at, events) {
		if _, err := tx.Tx.ExecContext(ctx, st.query, st.args...); err != nil {
			return fmt.Errorf("cluster event: %w", err)
		}
	}
	return nil
}

// eventStatements are the statements of clusterEvents.
func (s *Store) eventStatements(at time.Time, events []clusterEventRow) []sent {
	var out []sent
	for chunk := range slices.Chunk(events, 500) {
		args := make([]any, 0, 4*len(chunk))
		for _, e := range chunk {
			b, _ := json.Marshal(e.detail)
			args = append(args, e.cluster, micros(at), e.kind, string(b))
		}
		rows := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(chunk)), ", ")
		out = append(out, sent{query: s.q(`INSERT INTO cluster_events (cluster_id, at, kind, detail) VALUES ` + rows), args: args})
	}
	return out
}

// refreshCluster recomputes a cluster's view from its members, keys and
// alerts and stores it when it changed: created when new, dissolved when
// fewer than two members remain. The members' rows are touched only when
// what their rules see of the cluster changed (factsDigest).
func (s *Store) refreshCluster(ctx context.Context, tx wtx, id string, now time.Time) (*Cluster, error) {
	r, err := s.readCluster(ctx, tx, id, now, true)
	if err != nil {
		return nil, err
	}
	return s.refreshClusterFrom(ctx, tx, r, now)
}

// refreshClusterFrom is refreshCluster with the cluster as read in r,
// which must be what a fresh read would show, and its stored row as r
// holds it (read when it does not), which it keeps as it leaves it.
func (s *Store) refreshClusterFrom(ctx context.Context, tx wtx, r *clusterRead, now time.Time) (*Cluster, error) {
	if err := s.readClusterRow(ctx, tx, r); err != nil {
		return nil, err
	}
	c, stmts := s.refreshStatements(r, now)
	if err := tx.send(ctx, stmts); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return c, nil
}

// refreshClusters is refreshClusterFrom for several clusters, their
// statements sent together (one round trip on PostgreSQL's ingest
// writer, where a report that moves its device refreshes the clusters it
// left and joined inside the cluster lock).
func (s *Store) refreshClusters(ctx context.Context, tx wtx, reads []*clusterRead, now time.Time) error {
	var stmts []sent
	for _, r := range reads {
		if err := s.readClusterRow(ctx, tx, r); err != nil {
			return err
		}
		_, st := s.refreshStatements(r, now)
		stmts = append(stmts, st...)
	}
	if err := tx.send(ctx, stmts); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// refreshStatements are the statements that store the view of the
// cluster read in r (see refreshClusterFrom), whose stored row r holds;
// r keeps the row as they leave it.
func (s *Store) refreshStatements(r *clusterRead, now time.Time) (*Cluster, []sent) {
	c, id := r.view(), r.id
	status, summary, facts := r.row.status, r.row.summary, r.row.facts
	c.Status = "active"
	if len(c.Members) < 2 {
		c.Status = "dissolved"
	}
	sum, digest := c.summary(), c.factsDigest()
	switch {
	case !r.row.stored:
		if c.Status == "dissolved" {
			return c, nil
		}
		r.row = &clusterRow{status: c.Status, summary: sum, facts: digest, stored: true}
		return c, []sent{{query: s.q(`INSERT INTO clusters (id, status, created_at, updated_at, devices, people, score, suspected, summary, facts)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), args: []any{id, c.Status, micros(now), micros(now), c.Devices, c.People, c.Score, boolInt(c.Suspected), sum, digest}}}
	case status == c.Status && summary == sum && facts == digest:
		return c, nil
	}
	// What the members' rules see of their cluster changed (bump): a
	// verdict reached on the old view must not be stored (see prejudge),
	// so their versions move on. A change they do not see (a member's
	// risk score, egress address or alert list) leaves their rows alone:
	// rewriting every member's row on PostgreSQL costs a new row version
	// in each of the devices indexes, and a farm being diluted changes its
	// view on every report.
	bump := facts != digest
	q := `UPDATE clusters SET status = ?, updated_at = ?, devices = ?, people = ?, score = ?, suspected = ?, summary = ?, facts = ?
		WHERE id = ?`
	args := []any{c.Status, micros(now), c.Devices, c.People, c.Score, boolInt(c.Suspected), sum, digest, id}
	if bump && s.dialect == Postgres {
		// One statement for both: the parts write different tables.
		q, args, bump = `WITH c AS (`+q+`) UPDATE devices SET version = version + 1 WHERE cluster_id = ?`, append(args, id), false
	}
	stmts := []sent{{query: s.q(q), args: args}}
	r.row = &clusterRow{status: c.Status, summary: sum, facts: digest, stored: true}
	if bump {
		stmts = append(stmts, sent{query: s.q(`UPDATE devices SET version = version + 1 WHERE cluster_id = ?`), args: []any{id}})
	}
	if status != c.Status && c.Status == "dissolved" {
		stmts = append(stmts, s.eventStatements(now, []clusterEventRow{{id, "dissolved", map[string]any{}}})...)
	}
	return c, stmts
}

// readClusterRow reads the cluster's stored row into r unless it holds
// it.
func (s *Store) readClusterRow(ctx context.Context, tx querier, r *clusterRead) error {
	if r.row != nil {
		return nil
	}
	row := &clusterRow{}
	err := tx.QueryRowContext(ctx, s.q(`SELECT status, summary, facts FROM clusters WHERE id = ?`), r.id).Scan(&row.status, &row.summary, &row.facts)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("cluster: %w", err)
	}
	row.stored, r.row = err == nil, row
	return nil
}

// factsDigest digests what the members' rules see of the cluster: the
// facts of clusterFacts, each flagged member's id with its host name
// (a member's own facts leave itself out of flagged).
func (c *Cluster) factsDigest() string {
	type flag struct{ ID, Hostname string }
	var flagged []flag
	for _, m := range c.Members {
		if c.flagged[m.DeviceID] {
			flagged = append(flagged, flag{m.DeviceID, m.Hostname})
		}
	}
	b, _ := json.Marshal(struct {
		Facts   detect.Cluster
		Flagged []flag
	}{clusterFacts(c, ""), flagged})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// clusterView computes a cluster from its current members (devices with
// the cluster id that reported within the window).
func (s *Store) clusterView(ctx context.Context, tx querier, id string, now time.Time) (*Cluster, error) {
	r, err := s.readCluster(ctx, tx, id, now, false)
	if err != nil {
		return nil, err
	}
	return r.view(), nil
}

// clusterRead is what a cluster's view is computed from: its current
// members, their keys and their open or acknowledged alerts, as read.
type clusterRead struct {
	id      string
	members []ClusterMember // by host name, then id; Alerts unset
	// serial is each member's person bound by the HR-declared serial
	// ("" for none).
	serial []string
	index  map[string]int // device → its place in members
	keys   []memberKey    // by key, then device
	alerts [][]memberAlert
	// cached is the view computed from the rows (nil: compute it).
	cached *Cluster
	// row is the cluster's stored row (nil: not read), as read with the
	// members or as refreshClusterFrom left it.
	row *clusterRow
	// rows are the rows of its first maxReevaluate+1 devices by id, read
	// with it for judging them (reevaluateClusters), nil when not read.
	rows []deviceRow
}

// clusterRow is what refreshing a cluster compares with its view: the
// stored row's status, summary and facts digest (stored false: no row).
type clusterRow struct {
	status, summary, facts string
	stored                 bool
}

type memberKey struct {
	device, key string
	link        bool
}

// memberAlert is one open or acknowledged alert of a member.
type memberAlert struct{ rule, severity, category, tags string }

// readCluster reads a cluster's current members, their keys and alerts,
// and with row its stored row (for refreshClusterFrom), in one statement
// (one round trip on PostgreSQL, where a report that moves its device
// reads the clusters it changed inside the cluster lock): parts told
// apart by the first column, each sorted as its own query would be
// (members by host name and id, keys by key and device, alerts by rule).
func (s *Store) readCluster(ctx context.Context, tx querier, id string, now time.Time, row bool) (*clusterRead, error) {
	r, query, args := s.clusterStatement(id, now, row)
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	defer rows.Close()
	if err := r.scan(rows); err != nil {
		return nil, err
	}
	return r, nil
}

// clusterStatement is readCluster's statement, with the read its rows
// fill (scan).
func (s *Store) clusterStatement(id string, now time.Time, row bool) (*clusterRead, string, []any) {
	r := &clusterRead{id: id, members: []ClusterMember{}, index: map[string]int{}}
	since := micros(now.Add(-clusterWindow))
	// The alerts' status is tested here, not in SQL: PostgreSQL, its
	// statistics behind a growing table, intersected every member's
	// alerts with the whole status index (tens of milliseconds a read),
	// and a device has at most one alert of each rule.
	query, args := clusterQuery, []any{id, since}
	if row {
		query, args = clusterRowQuery, append(args, id)
		r.row = &clusterRow{}
	}
	return r, s.q(query), args
}

// scan reads the rows of clusterStatement into r.
func (r *clusterRead) scan(rows resultRows) error {
	// Scanned into once (a variable per row would escape, each row), as
	// is the list of them (a list per row escapes, through resultRows).
	var part int
	var dev, c3, c4, c5, c6, c7 string
	dest := []any{&part, &dev, &c3, &c4, &c5, &c6, &c7}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		switch part {
		case 0:
			m := ClusterMember{DeviceID: dev, Hostname: c3, Person: c4}
			m.RiskScore, _ = strconv.Atoi(c6)
			var e detect.Egress
			json.Unmarshal([]byte(c5), &e)
			m.EgressIP, m.NetworkClass = e.IP, e.NetworkClass
			r.index[m.DeviceID] = len(r.members)
			r.members = append(r.members, m)
			r.serial = append(r.serial, c7)
			r.alerts = append(r.alerts, nil)
		case 1:
			r.keys = append(r.keys, memberKey{device: dev, key: c3, link: c4 == "1"})
		case 2:
			if i, ok := r.index[dev]; ok && openStatus(c7) {
				r.alerts[i] = append(r.alerts[i], memberAlert{rule: c3, severity: c4, category: c5, tags: c6})
			}
		case 3:
			*r.row = clusterRow{status: c3, summary: c4, facts: c5, stored: true}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if r.alerts == nil {
		r.alerts = [][]memberAlert{}
	}
	return nil
}

// The members of a cluster, their keys and alerts (see readCluster), and
// its stored row. The members (m) are read once, through the cluster
// index, and their keys and alerts are joined to them through the device
// indexes: each part selected the members again, and PostgreSQL, without
// statistics, intersected the cluster index with the whole last_seen
// index for each (a third of the read) and read the alerts of every
// device to hash-join them. MATERIALIZED keeps SQLite from recomputing m
// in each part. Of the keys, only those two members may share are read
// (the view's evidence): a linking key that no other device holds
// (link_keys) is left out. Each member's serial numbers are such keys, and
// reading them made a farm of eight return a hundred rows where twenty
// count.
const (
	clusterParts = `WITH m AS MATERIALIZED (SELECT d.id, d.hostname, d.person, d.egress, CAST(d.risk_score AS TEXT) AS risk,
			COALESCE(` + personBySerial + `, '') AS by_serial FROM devices d
		WHERE d.cluster_id = ? AND d.revoked_at = 0 AND d.last_seen > ?)
		SELECT 0, id, hostname, person, egress, risk, by_serial FROM m
		UNION ALL SELECT 1, k.device_id, k.key, CAST(k.link AS TEXT), '', '', '' FROM m JOIN device_keys k ON k.device_id = m.id
		WHERE k.link = 0 OR EXISTS (SELECT 1 FROM link_keys l WHERE l.key = k.key AND l.holders > 1)
		UNION ALL SELECT 2, a.device_id, a.rule_id, a.severity, a.category, a.tags, a.status FROM m JOIN alerts a ON a.device_id = m.id`
	clusterQuery    = clusterParts + ` ORDER BY 1, 3, 2`
	clusterRowQuery = clusterParts + `
		UNION ALL SELECT 3, c.id, c.status, c.summary, c.facts, '', '' FROM clusters c WHERE c.id = ?
		ORDER BY 1, 3, 2`
)

// openStatus: an open or acknowledged alert counts in its cluster.
func openStatus(status string) bool { return status == StatusOpen || status == StatusAcknowledged }

// rereadMember reads a member's person binding, alerts and risk score
// again, after it was judged, so that the view shows the cluster as a
// fresh read would; it reads one device's row and alerts, not every
// member's. A device not among the members changes nothing.
func (s *Store) rereadMember(ctx context.Context, tx querier, r *clusterRead, deviceID, person string) error {
	i, ok := r.index[deviceID]
	if !ok {
		return nil
	}
	// One row with empty alert columns when the device has no alert.
	rows, err := tx.QueryContext(ctx, s.q(`SELECT d.risk_score, COALESCE(a.rule_id, ''), COALESCE(a.severity, ''), COALESCE(a.category, ''),
		COALESCE(a.tags, ''), COALESCE(a.status, '') FROM devices d LEFT JOIN alerts a ON a.device_id = d.id WHERE d.id = ? ORDER BY a.rule_id`), deviceID)
	if err != nil {
		return fmt.Errorf("cluster alerts: %w", err)
	}
	var alerts []memberAlert
	var risk int
	for rows.Next() {
		var a memberAlert
		var status string
		if err := rows.Scan(&risk, &a.rule, &a.severity, &a.category, &a.tags, &status); err != nil {
			rows.Close()
			return err
		}
		if openStatus(status) {
			alerts = append(alerts, a)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	m := &r.members[i]
	if person != m.Person || risk != m.RiskScore || !slices.Equal(alerts, r.alerts[i]) {
		m.Person, m.RiskScore, r.alerts[i], r.cached = person, risk, alerts, nil
	}
	return nil
}

// rereadJudged rereads a device just judged (see record) in the views
// that hold it as a member, unless judging changed none of what they
// show of it: with no findings and nothing resolved, record wrote none
// of its alerts, and only a new person binding needs reading back.
func (s *Store) rereadJudged(ctx context.Context, tx querier, views clusterViews, facts *detect.DeviceFacts, v verdict, changed bool) error {
	for _, c := range views {
		if i, ok := c.member(facts.ID); ok && (len(v.findings) > 0 || changed || facts.Person != c.members[i].Person) {
			if err := s.rereadMember(ctx, tx, c, facts.ID, facts.Person); err != nil {
				return err
			}
		}
	}
	return nil
}

// member returns a device's place among the members (false: not one, or
// no cluster read).
func (r *clusterRead) member(deviceID string) (int, bool) {
	if r == nil {
		return 0, false
	}
	i, ok := r.index[deviceID]
	return i, ok
}

// view computes the cluster from the rows read.
func (r *clusterRead) view() *Cluster {
	if r.cached != nil {
		return r.cached
	}
	c := &Cluster{ID: r.id, Links: []string{}, Evidence: []SharedKey{}, CoSignals: []string{}, Members: make([]ClusterMember, len(r.members)),
		Emails: []string{}, flagged: map[string]bool{}}
	classes := map[string]int{}
	// The people count: one per person bound by the HR-declared serial,
	// and one per device that is not, bound by a user name or unbound (a
	// user name is the agent's word, so it never lowers the count).
	people, bySerial, notBySerial := map[string]bool{}, map[string]bool{}, 0
	for i, m := range r.members {
		m.Alerts = []string{}
		classes[m.NetworkClass]++
		if m.Person == "" {
			c.Unbound++
		} else {
			people[m.Person] = true
		}
		if r.serial[i] != "" {
			bySerial[r.serial[i]] = true
		} else {
			notBySerial++
		}
		c.Members[i] = m
	}
	c.Devices = len(c.Members)
	c.Emails = slices.Sorted(maps.Keys(people))
	c.People = len(bySerial) + notBySerial
	// The most common class, the first by name among equals. "" (no
	// class known) is a class like the others: taking it for "none chosen
	// yet" made the choice follow the map's order when it was common.
	best := -1
	for class, n := range classes {
		if n > best || n == best && class < c.NetworkClass {
			c.NetworkClass, best = class, n
		}
	}
	r.cached = c
	if c.Devices == 0 {
		return c
	}
	// Shared keys.
	links := map[string]bool{}
	for _, mk := range r.keys {
		k := fleet.Key(mk.key)
		if n := len(c.Evidence); n > 0 && c.Evidence[n-1].Kind == k.Kind() && c.Evidence[n-1].Value == k.Value() {
			c.Evidence[n-1].Devices = append(c.Evidence[n-1].Devices, mk.device)
			c.Evidence[n-1].Link = c.Evidence[n-1].Link || mk.link
		} else {
			c.Evidence = append(c.Evidence, SharedKey{Kind: k.Kind(), Value: k.Value(), Link: mk.link, Devices: []string{mk.device}})
		}
	}
	c.Evidence = slices.DeleteFunc(c.Evidence, func(k SharedKey) bool { return len(k.Devices) < 2 })
	for _, k := range c.Evidence {
		if k.Link {
			links[k.Kind] = true
			if slices.Contains(fleet.NetworkKinds, k.Kind) {
				c.SharedNetwork = true
			}
		}
	}
	c.Links = slices.Sorted(maps.Keys(links))
	// Members' open alerts: co-signals and suspicion.
	signals := map[string]bool{}
	signalled := map[string]bool{}
	for i, alerts := range r.alerts {
		dev := c.Members[i].DeviceID
		for _, a := range alerts {
			c.Members[i].Alerts = append(c.Members[i].Alerts, a.rule)
			if a.category == fleetCategory {
				c.Suspected = true
				continue
			}
			if (a.severity != "low" || hasTag(a.tags, coSignalTag)) && a.category != agentCategory {
				signals[a.category] = true
				signalled[dev] = true
			}
			if a.severity == "high" || a.severity == "critical" {
				c.flagged[dev] = true
			}
		}
	}
	c.CoSignals = slices.Sorted(maps.Keys(signals))
	c.CoSignalDevices = len(signalled)
	c.Score = fleet.FarmScore(c.People, c.SharedNetwork, len(c.CoSignals))
	return c
}

// clusterViews keeps the clusters read while their members are judged
// one after another (reevaluateClusters), by cluster id. Under "" (no
// cluster) it may keep the rows of devices re-clustering left in none
// (applyPipelined), which have no view.
type clusterViews map[string]*clusterRead

// row returns a device's row when views hold it, as read with a cluster's
// members or with the devices left in none after re-clustering
// (applyPipelined), which nothing wrote since but judging.
func (v clusterViews) row(deviceID string) (deviceRow, bool) {
	for _, r := range v {
		for _, d := range r.rows {
			if d.id == deviceID {
				return d, true
			}
		}
	}
	return deviceRow{}, false
}

// view returns the cluster's view: from views when they hold it, else
// read (and kept when views is not nil).
func (v clusterViews) view(ctx context.Context, s *Store, q querier, id string, now time.Time) (*Cluster, error) {
	if v == nil {
		return s.clusterView(ctx, q, id, now)
	}
	r, ok := v[id]
	if !ok {
		var err error
		if r, err = s.readCluster(ctx, q, id, now, false); err != nil {
			return nil, err
		}
		v[id] = r
	}
	return r.view(), nil
}

// maxReevaluate bounds how many members of a changed cluster are
// evaluated again at once; the others see the change at their next report.
const maxReevaluate = 100

// reevaluateClusters evaluates the device rules again on the members of
// the clusters in moved, whose membership changed, and of owns, the
// clusters of reporting devices whose alerts changed (none in moved),
// except the reporting devices (except), judged already, so that a farm is
// flagged on all its laptops when the last one joins, not at their next
// reports. The members of an own cluster are judged again only when what
// they see of it changed (its facts digest differs from the one stored at
// its last refresh): a reporter's alert that flags no one and is no
// co-signal (a low alert) changes nothing for them. At most maxReevaluate
// members are judged.
//
// Each member sees its cluster as a fresh read would show it, with the
// alerts of the members judged before it, but the cluster is read once:
// after each member only that member's alerts and person binding are read
// back into the view (rereadMember). Reading the whole cluster for every
// member made a join cost members² rows, which on PostgreSQL under load
// took a farm diluted by 245 fakes past its reports' deadlines.
//
// views holds the clusters already read in the transaction (nil: none),
// each as a fresh read would show it; it ends holding every cluster
// judged, kept so, from which their rows are refreshed.
func (s *Store) reevaluateClusters(ctx context.Context, tx wtx, moved, owns, except []string, now time.Time, ev Evaluator, views clusterViews) error {
	done := map[string]bool{}
	for _, id := range except {
		done[id] = true
	}
	if views == nil {
		views = clusterViews{}
	}
	clusters := slices.Clone(moved)
	judge := slices.Clone(moved)
	for _, own := range owns {
		clusters = append(clusters, own)
		r, ok := views[own]
		if !ok {
			var err error
			if r, err = s.readCluster(ctx, tx, own, now, true); err != nil {
				return err
			}
			views[own] = r
		}
		if err := s.readClusterRow(ctx, tx, r); err != nil {
			return err
		}
		if r.row.facts != r.view().factsDigest() {
			judge = append(judge, own)
		}
	}
	// The members' rows are read before any is judged: judging a device
	// writes none of what another's row gives its facts. No more than
	// maxReevaluate+1 of a cluster can be needed (one may be except).
	var affected []deviceRow
	for _, c := range judge {
		if r := views[c]; r != nil && r.rows != nil {
			affected, r.rows = append(affected, r.rows...), nil // read with the cluster (applyPipelined)
			continue
		}
		members, err := s.readMembers(ctx, tx, c, maxReevaluate+1)
		if err != nil {
			return err
		}
		affected = append(affected, members...)
	}
	// Devices that just left a cluster are evaluated too: their cluster
	// alerts may clear.
	judged := 0
	for _, d := range affected {
		id := d.id
		if done[id] || judged >= maxReevaluate {
			continue
		}
		done[id] = true
		judged++
		if err := s.rejudge(ctx, tx, d, now, ev, views); err != nil {
			return err
		}
	}
	// The members' alerts may have changed the clusters' co-signals.
	reads := make([]*clusterRead, len(clusters))
	for i, c := range clusters {
		r, ok := views[c]
		if !ok {
			var err error
			if r, err = s.readCluster(ctx, tx, c, now, true); err != nil {
				return err
			}
		}
		reads[i] = r
	}
	return s.refreshClusters(ctx, tx, reads, now)
}

// rejudge evaluates the device rules again on a device from its row d,
// as the clusters in views show it, and records the verdict, keeping the
// views as a fresh read would show them (see reevaluateClusters).
func (s *Store) rejudge(ctx context.Context, tx wtx, d deviceRow, now time.Time, ev Evaluator, views clusterViews) error {
	r, err := s.factsFrom(ctx, tx, d, now, nil, views)
	if err != nil {
		return err
	}
	if err := s.writeFacts(ctx, tx, d.id, r); err != nil {
		return err
	}
	v := s.decide(ctx, ev, r.facts, nil, now)
	c := views[r.facts.Cluster.ID]
	if i, ok := c.member(d.id); ok && v.cleared != nil {
		// Only the rules of the member's open alerts can resolve (the
		// view holds them as a fresh read would).
		v.cleared = slices.DeleteFunc(v.cleared, func(rule string) bool {
			return !slices.ContainsFunc(c.alerts[i], func(a memberAlert) bool { return a.rule == rule })
		})
	}
	_, err = s.recordIn(ctx, tx, r.facts, v, now, views)
	return err
}

// clusterFacts is what rules see of the device's cluster.
func clusterFacts(c *Cluster, deviceID string) detect.Cluster {
	f := detect.Cluster{ID: c.ID, Devices: int64(c.Devices), People: int64(c.People), Unbound: int64(c.Unbound),
		Links: c.Links, SharedNetwork: c.SharedNetwork, NetworkClass: c.NetworkClass, CoSignals: c.CoSignals,
		CoSignalDevices: int64(c.CoSignalDevices), Score: int64(c.Score), Hostnames: []string{}, Flagged: []string{}, Evidence: []string{}}
	kinds := map[string]bool{}
	for _, k := range c.Evidence {
		kinds[k.Kind] = true
	}
	f.Evidence = slices.Sorted(maps.Keys(kinds))
	for _, m := range c.Members {
		f.Hostnames = append(f.Hostnames, m.Hostname)
		if m.DeviceID != deviceID && c.flagged[m.DeviceID] {
			f.Flagged = append(f.Flagged, m.Hostname)
		}
	}
	return f
}

// ListClusters lists the active clusters (only the suspected ones when
// suspectedOnly), highest farm score first, at most limit (PageLimit).
func (s *Store) ListClusters(ctx context.Context, suspectedOnly bool, limit int) ([]Cluster, error) {
	q := `SELECT id, status, created_at, updated_at, summary FROM clusters WHERE status = 'active' ORDER BY score DESC, id LIMIT ?`
	if suspectedOnly {
		q = `SELECT id, status, created_at, updated_at, summary FROM clusters WHERE status = 'active' AND suspected = 1
			ORDER BY score DESC, id LIMIT ?`
	}
	rows, err := s.r.QueryContext(ctx, s.q(q), PageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	return scanRows(rows, scanCluster)
}

func scanCluster(sc scanner) (Cluster, error) {
	var c Cluster
	var created, updated int64
	var summary string
	if err := sc.Scan(&c.ID, &c.Status, &created, &updated, &summary); err != nil {
		return Cluster{}, err
	}
	json.Unmarshal([]byte(summary), &c)
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return c, nil
}

// GetCluster loads a cluster (active or dissolved) with its timeline.
func (s *Store) GetCluster(ctx context.Context, id string) (Cluster, error) {
	c, err := scanCluster(s.r.QueryRowContext(ctx, s.q(`SELECT id, status, created_at, updated_at, summary FROM clusters WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, ErrNotFound
	}
	if err != nil {
		return Cluster{}, err
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT at, kind, detail FROM cluster_events WHERE cluster_id = ? ORDER BY id`), id)
	if err != nil {
		return Cluster{}, fmt.Errorf("cluster timeline: %w", err)
	}
	c.Timeline, err = scanRows(rows, func(sc scanner) (ClusterEvent, error) {
		var e ClusterEvent
		var at int64
		var detail string
		if err := sc.Scan(&at, &e.Kind, &detail); err != nil {
			return e, err
		}
		e.At = fromMicros(at)
		json.Unmarshal([]byte(detail), &e.Detail)
		return e, nil
	})
	if err != nil {
		return Cluster{}, err
	}
	return c, nil
}

// hasTag reports whether an alert's tags (a JSON array of strings, as
// upsertAlerts stores them) hold tag; unreadable tags hold nothing.
func hasTag(tagsJSON, tag string) bool {
	if !strings.Contains(tagsJSON, tag) {
		return false
	}
	var tags []string
	return json.Unmarshal([]byte(tagsJSON), &tags) == nil && slices.Contains(tags, tag)
}
