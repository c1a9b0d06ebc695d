package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// device is the configured source, looked at afresh on every call: udev
// links, loop devices and DRBD devices come and go while the agent runs.
type device struct {
	spec     string // as configured: /dev/..., UUID=..., an image file, server:/export
	path     string // the path that names it, for a tag such as UUID=
	resolved string // path with symlinks resolved; "" when it does not exist
	block    bool
	rdev     uint64 // when block
	file     bool   // a regular file: an image that mount(8) attaches to a loop device
	fileDev  uint64
	fileIno  uint64
}

// tagDirs are the udev directories mount(8) consults for the tags it accepts.
var tagDirs = map[string]string{
	"UUID":      "/dev/disk/by-uuid",
	"LABEL":     "/dev/disk/by-label",
	"PARTUUID":  "/dev/disk/by-partuuid",
	"PARTLABEL": "/dev/disk/by-partlabel",
}

func resolveDevice(spec string) device {
	d := device{spec: spec, path: spec}
	if tag, val, ok := strings.Cut(spec, "="); ok {
		if dir, known := tagDirs[tag]; known && val != "" && !strings.Contains(val, "/") {
			d.path = filepath.Join(dir, val)
		}
	}
	if !filepath.IsAbs(d.path) {
		return d // a network or virtual source: only its name can be compared
	}
	r, err := filepath.EvalSymlinks(d.path)
	if err != nil {
		return d
	}
	d.resolved = r
	var st unix.Stat_t
	if unix.Stat(r, &st) != nil {
		return d
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		d.block, d.rdev = true, uint64(st.Rdev)
	case unix.S_IFREG:
		d.file, d.fileDev, d.fileIno = true, uint64(st.Dev), uint64(st.Ino)
	}
	return d
}

// local says whether the source is a block device or image that must exist
// on this node, as opposed to a network or virtual file system.
func (d device) local() bool { return filepath.IsAbs(d.path) }

// matches says whether a mountinfo entry is this device mounted. Block
// devices compare by device number, so /dev/disk/by-uuid/..., /dev/mapper/x
// and /dev/dm-0 are one device; an image compares with the backing file of
// the loop device that mount(8) set up for it.
func (d device) matches(e entry) bool {
	switch {
	case e.Source == d.spec:
		return true
	case d.block && e.Dev == d.rdev:
		return true
	case d.resolved != "" && filepath.IsAbs(e.Source):
		if r, err := filepath.EvalSymlinks(e.Source); err == nil && r == d.resolved {
			return true
		}
	}
	return d.file && d.backs(e.Source)
}

func (d device) backs(source string) bool {
	var st unix.Stat_t
	if unix.Stat(source, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return false
	}
	rdev := uint64(st.Rdev)
	data, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/loop/backing_file", unix.Major(rdev), unix.Minor(rdev)))
	if err != nil {
		return false
	}
	backing := strings.TrimSuffix(strings.TrimSpace(string(data)), " (deleted)")
	var bst unix.Stat_t
	if unix.Stat(backing, &bst) != nil {
		return false
	}
	return uint64(bst.Dev) == d.fileDev && uint64(bst.Ino) == d.fileIno
}
