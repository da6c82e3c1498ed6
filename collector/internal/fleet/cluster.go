package fleet

import (
	"cmp"
	"slices"
)

// MaxHolders is how many devices may hold a linking key for it to link
// them: a key reported by more devices (a forged or placeholder value, a
// network wrongly left unclassified) links nothing. The largest laptop
// farms in court records held about 90 laptops.
const MaxHolders = 250

// Components finds the clusters of a fleet: keys[i] are device i's
// linking keys, holders the number of devices holding each key (keys with
// more than MaxHolders are ignored; nil counts holders from keys). It
// returns the groups of two or more linked devices, as sorted indexes,
// largest first.
func Components(keys [][]Key, holders map[Key]int) [][]int {
	if holders == nil {
		holders = make(map[Key]int)
		for _, ks := range keys {
			for _, k := range ks {
				holders[k]++
			}
		}
	}
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
	first := make(map[Key]int32, len(holders))
	for i, ks := range keys {
		for _, k := range ks {
			if n := holders[k]; n < 2 || n > MaxHolders {
				continue
			}
			j, ok := first[k]
			if !ok {
				first[k] = int32(i)
				continue
			}
			a, b := find(int32(i)), find(j)
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
