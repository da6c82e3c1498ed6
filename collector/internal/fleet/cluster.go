package fleet

import (
	"cmp"
	"slices"
)

// MaxHolders is how many devices a linking key links: a key reported by
// more devices (a forged or placeholder value, a network wrongly left
// unclassified, or a farm's router reported by a crowd of fake laptops)
// links only its MaxHolders most senior holders. So a key crowded by new
// devices keeps linking the devices it linked before, and the newcomers
// past the limit do not join: enrolling fakes cannot break a farm apart.
// The largest laptop farms in court records held about 90 laptops.
const MaxHolders = 250

// Components finds the clusters of a fleet. keys[i] are device i's
// linking keys, the devices in order of seniority (the collector first
// saw device i before device i+1); live[i] says whether device i takes
// part (nil: all do). A key links its first MaxHolders holders in that
// order, the devices that do not take part (silent, revoked) included in
// the count but never linked. It returns the groups of two or more linked
// devices, as sorted indexes, largest first.
func Components(keys [][]Key, live []bool) [][]int {
	parent := make([]int32, len(keys))
	for i := range parent {
		parent[i] = int32(i)
	}
	find := func(i int32) int32 {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	type holding struct {
		first int32 // the first live holder, -1 for none yet
		n     int   // holders so far, live or not
	}
	seen := make(map[Key]holding)
	for i, ks := range keys {
		on := live == nil || live[i]
		for _, k := range ks {
			h, ok := seen[k]
			if !ok {
				h.first = -1
			}
			h.n++
			link := on && h.n <= MaxHolders && h.first >= 0
			if on && h.first < 0 {
				h.first = int32(i)
			}
			seen[k] = h
			if !link {
				continue
			}
			a, b := find(int32(i)), find(h.first)
			if a != b {
				parent[max(a, b)] = min(a, b)
			}
		}
	}
	size := make([]int32, len(keys))
	for i := range keys {
		size[find(int32(i))]++
	}
	at := map[int32]int{} // root → index in out
	var out [][]int
	for i := range keys {
		r := find(int32(i))
		if size[r] < 2 {
			continue
		}
		j, ok := at[r]
		if !ok {
			j = len(out)
			at[r] = j
			out = append(out, make([]int, 0, size[r]))
		}
		out[j] = append(out[j], i)
	}
	slices.SortFunc(out, func(a, b []int) int { return cmp.Or(len(b)-len(a), a[0]-b[0]) })
	return out
}

// AssignIDs names clusters so that a cluster keeps its id while its
// members change: each group (largest first) takes the id most of its
// members had (ties: the smallest id), unless a larger group took it
// already; otherwise a new id from newID. old[i] is device i's current
// cluster id ("" for none).
func AssignIDs(groups [][]int, old []string, newID func() string) []string {
	taken := map[string]bool{}
	ids := make([]string, len(groups))
	for gi, g := range groups {
		votes := map[string]int{}
		for _, i := range g {
			if id := old[i]; id != "" && !taken[id] {
				votes[id]++
			}
		}
		best := ""
		for id, n := range votes {
			if best == "" || n > votes[best] || (n == votes[best] && id < best) {
				best = id
			}
		}
		if best == "" {
			best = newID()
		}
		taken[best] = true
		ids[gi] = best
	}
	return ids
}
