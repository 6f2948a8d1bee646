// Package localproc holds what the dev server, the bench and the Lambda
// emulator tests need to run helper processes on this machine: free
// loopback ports and a buffer two output pipes can share.
package localproc

import (
	"bytes"
	"net"
	"strconv"
	"sync"
)

// FreePorts returns n distinct free TCP ports on 127.0.0.1, held open
// together while the kernel picks them so they differ.
func FreePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}

// SyncBuffer is a bytes.Buffer safe for a process's stdout and stderr to
// write while another goroutine reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
