package actors

import (
	"time"

	"golang.org/x/sys/unix"
)

// The free-space floor. Below it the node refuses produce with
// KAFKA_STORAGE_ERROR (retriable: clients back off and retry, as from a
// Java broker whose log directory failed) and goes on serving reads and
// replicating, so that a filling disk costs the availability of writes
// before it costs the node: at zero, a write fails and the node must
// fail-stop. Followers cannot refuse what their leader sends (raft), so a
// follower's disk can still fill, and that node then stops while the
// others go on.

// defaultFloor is the floor when cluster.toml sets none: 5% of the
// filesystem, at most 1 GiB.
func defaultFloor(total uint64) uint64 { return min(total/20, 1<<30) }

// diskCheckEvery is how often the free space is looked at.
const diskCheckEvery = time.Second

// watchDisk keeps b.diskLow up to date until the node stops, and says so
// in the log each time the disk crosses the floor.
func (b *Broker) watchDisk() {
	floor := b.cfg.MinFreeDiskBytes
	if floor < 0 {
		return // disabled
	}
	check := func() {
		var st unix.Statfs_t
		if err := unix.Statfs(b.cfg.DataDir, &st); err != nil {
			b.log.Warn("free disk space unknown", "data_dir", b.cfg.DataDir, "err", err)
			return
		}
		free, total := st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize)
		f := uint64(floor)
		if floor == 0 {
			f = defaultFloor(total)
		}
		low := free < f
		if b.diskLow.Swap(low) != low {
			if low {
				b.log.Warn("free disk space below the floor: refusing produce with KAFKA_STORAGE_ERROR until it is back above", "data_dir", b.cfg.DataDir, "free_bytes", free, "floor_bytes", f)
			} else {
				b.log.Info("free disk space above the floor again: taking produce", "data_dir", b.cfg.DataDir, "free_bytes", free, "floor_bytes", f)
			}
		}
	}
	check()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(diskCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-b.stopTick:
				return
			case <-t.C:
				check()
			}
		}
	}()
}
