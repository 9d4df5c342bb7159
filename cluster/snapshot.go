package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Snapshots stream on a connection of their own, so that a large one
// never holds up the raft messages of every other group: hello (kind
// snapshot), the group, the MsgSnap, then the body; the receiver answers
// one byte, 1 once it has staged the snapshot and handed the MsgSnap to
// its replica, 0 if it could not.

// maxSnapshotsOut bounds the snapshots a node streams at once; raft sends
// at most one per follower per group, and waits for the report.
const maxSnapshotsOut = 4

// snapshotTimeout bounds one snapshot's stream; a larger one is better
// sent again than held open forever.
const snapshotTimeout = 10 * time.Minute

// SendSnapshot streams m (a MsgSnap for group) and body to m.To, off the
// caller's goroutine, and reports the outcome through OnSnapshotSent.
func (t *Transport) SendSnapshot(group uint64, m *pb.Message, body func(io.Writer) error) {
	to := m.GetTo()
	p := t.peers[to]
	f := t.fate(Outbound{To: to, Kind: KindSnapshot, Group: group, Type: m.GetType().String()})
	if p == nil || f.Drop {
		t.snapshotSent(group, to, false)
		return
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		if f.Delay > 0 {
			tm := time.NewTimer(f.Delay)
			select {
			case <-tm.C:
			case <-t.closed:
				tm.Stop()
				return
			}
		}
		select {
		case t.snapSlots <- struct{}{}:
		case <-t.closed:
			return
		}
		defer func() { <-t.snapSlots }()
		err := t.streamSnapshot(p.addr, group, m, body)
		if err != nil {
			t.cfg.Log.Warn("raft snapshot not sent", "group", group, "to", to, "err", err)
		} else {
			t.cfg.Log.Info("raft snapshot sent", "group", group, "to", to, "index", m.GetSnapshot().GetMetadata().GetIndex())
		}
		t.snapshotSent(group, to, err == nil)
	}()
}

func (t *Transport) snapshotSent(group, to uint64, ok bool) {
	if t.cfg.OnSnapshotSent != nil {
		t.cfg.OnSnapshotSent(group, to, ok)
	}
}

func (t *Transport) streamSnapshot(addr string, group uint64, m *pb.Message, body func(io.Writer) error) error {
	c, err := t.dialFromHome(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := closeOnStop(t.closed, c)
	defer close(stop)
	c.SetDeadline(time.Now().Add(snapshotTimeout))
	w := bufio.NewWriterSize(c, 1<<20)
	msg, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	hdr := hello(t.cfg.NodeID, connSnapshot)
	hdr = binary.BigEndian.AppendUint64(hdr, group)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(msg)))
	if _, err := w.Write(append(hdr, msg...)); err != nil {
		return err
	}
	if err := body(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("no answer from the receiver: %w", err)
	}
	if ack[0] != 1 {
		return errors.New("the receiver refused the snapshot")
	}
	return nil
}

// closeOnStop closes c when closed is, until the returned channel is closed.
func closeOnStop(closed <-chan struct{}, c net.Conn) chan struct{} {
	stop := make(chan struct{})
	go func() {
		select {
		case <-closed:
			c.Close()
		case <-stop:
		}
	}()
	return stop
}

func (t *Transport) receiveSnapshot(c net.Conn, r *bufio.Reader, from uint64) error {
	c.SetDeadline(time.Now().Add(snapshotTimeout))
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	group, n := binary.BigEndian.Uint64(hdr[:]), binary.BigEndian.Uint32(hdr[8:])
	if n > maxFrame {
		return fmt.Errorf("snapshot message of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	m := &pb.Message{}
	if err := proto.Unmarshal(buf, m); err != nil {
		return fmt.Errorf("snapshot message: %w", err)
	}
	ok := byte(0)
	err := errors.New("no receiver")
	if t.cfg.ReceiveSnapshot != nil {
		err = t.cfg.ReceiveSnapshot(group, m, r)
	}
	if err == nil {
		ok = 1
	} else {
		t.cfg.Log.Warn("raft snapshot refused", "group", group, "from", from, "err", err)
	}
	if _, werr := c.Write([]byte{ok}); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	return io.EOF
}
