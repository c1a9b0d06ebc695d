package cli

import (
	"sort"
	"strings"

	"github.com/vigil-ha/vigil/internal/model"
)

// roleNotes sums up the roles of a group's promotable resources for the NOTES
// column, e.g. "drbd: promoted on a, unpromoted on b,c", one note per resource.
func roleNotes(roles map[string]map[string]string) []string {
	var res []string
	for r := range roles {
		res = append(res, r)
	}
	sort.Strings(res)
	var notes []string
	for _, r := range res {
		byRole := map[string][]string{}
		for node, role := range roles[r] {
			byRole[role] = append(byRole[role], node)
		}
		var parts []string
		for _, role := range []string{model.RolePromoted, model.RoleUnpromoted, model.RoleFailed, model.RoleStopped} {
			if nodes := byRole[role]; len(nodes) > 0 {
				sort.Strings(nodes)
				parts = append(parts, role+" on "+strings.Join(nodes, ","))
			}
		}
		if len(parts) > 0 {
			notes = append(notes, r+": "+strings.Join(parts, ", "))
		}
	}
	return notes
}
