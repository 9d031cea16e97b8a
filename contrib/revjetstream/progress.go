package revjetstream

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// progress marks a message InProgress at an interval while its handler
// runs, which restarts its AckWait on the server, so that JetStream does not
// deliver it to another consumer meanwhile. A timer rather than a goroutine:
// most handlers end before the first signal is due.
type progress struct {
	mu      sync.Mutex
	msg     jetstream.Msg
	every   time.Duration
	timer   *time.Timer
	stopped bool
}

func keepInProgress(msg jetstream.Msg, every time.Duration) *progress {
	p := &progress{msg: msg, every: every}
	p.mu.Lock() // signal must not run before p.timer is set
	p.timer = time.AfterFunc(every, p.signal)
	p.mu.Unlock()
	return p
}

func (p *progress) signal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	// A failed signal is not reported: it costs at most a redelivery, which
	// the guard refuses as in flight or drops as a duplicate, and a broken
	// connection shows in the error of the call that settles the message.
	_ = p.msg.InProgress()
	p.timer.Reset(p.every)
}

// stop ends the signals: none is sent once it returns, so the message can
// be settled.
func (p *progress) stop() {
	p.mu.Lock()
	p.stopped = true
	p.timer.Stop()
	p.mu.Unlock()
}
