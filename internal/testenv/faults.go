package testenv

import (
	"context"
	"io"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/internal/localproc"
	"github.com/connectexpress/onboarding/internal/repofile"
	"github.com/connectexpress/onboarding/shared/dynamostore"
)

// FlakyDB wraps a store client and fails every call while Down is set, with
// the error DynamoDB gives a throttled table.
type FlakyDB struct {
	dynamostore.Client
	Down     atomic.Bool
	Failures atomic.Int64
}

var _ dynamostore.Client = (*FlakyDB)(nil)

func (f *FlakyDB) fail() error {
	if f.Down.Load() {
		f.Failures.Add(1)
		return &types.ProvisionedThroughputExceededException{Message: aws.String("injected: rate of requests exceeds the allowed throughput")}
	}
	return nil
}

func (f *FlakyDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Client.GetItem(ctx, in, o...)
}

func (f *FlakyDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Client.PutItem(ctx, in, o...)
}

func (f *FlakyDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Client.UpdateItem(ctx, in, o...)
}

func (f *FlakyDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Client.TransactWriteItems(ctx, in, o...)
}

func (f *FlakyDB) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, o ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	return f.Client.(dynamostore.TableAdmin).CreateTable(ctx, in, o...)
}

func (f *FlakyDB) UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	return f.Client.(dynamostore.TableAdmin).UpdateTimeToLive(ctx, in, o...)
}

// CuttableMoto is a TCP proxy in front of moto_server whose connection can
// be cut and restored, so DynamoDB becomes unreachable mid-run without moto
// losing its in-memory state (a stopped moto forgets every table).
type CuttableMoto struct {
	Client *dynamodb.Client
	URL    string // moto through the proxy, for any service moto serves
	cut    atomic.Bool
	mu     sync.Mutex
	open   []net.Conn
}

// NewCuttableMoto starts the proxy and returns a client that goes through it.
func NewCuttableMoto(t testing.TB) *CuttableMoto {
	target, err := url.Parse(require(t, "TEST_DYNAMODB_ENDPOINT"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &CuttableMoto{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if m.cut.Load() {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // reset, like a host that went away
				}
				c.Close()
				continue
			}
			go m.pipe(c, target.Host)
		}
	}()
	t.Cleanup(func() { ln.Close(); m.Cut(); m.cut.Store(false) })
	m.URL = "http://" + ln.Addr().String()
	m.Client = DynamoDBAt(m.URL)
	return m
}

func (m *CuttableMoto) pipe(c net.Conn, target string) {
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Close()
		return
	}
	m.mu.Lock()
	m.open = append(m.open, c, up)
	m.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

// Cut drops every open connection and refuses new ones.
func (m *CuttableMoto) Cut() {
	m.cut.Store(true)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.open {
		c.Close()
	}
	m.open = nil
}

// Restore lets connections through again.
func (m *CuttableMoto) Restore() { m.cut.Store(false) }

// PrivateMoto is a moto_server of the test's own, so a test can stop it
// (SIGSTOP: the process freezes, its in-memory tables survive) and let it
// go on (SIGCONT) without disturbing the shared one.
type PrivateMoto struct {
	Endpoint string
	pid      int
}

// StartPrivateMoto runs scripts/moto_server.py from the project's venv on a
// free loopback port; the test fails (or skips, outside CI) without the venv.
func StartPrivateMoto(t testing.TB) *PrivateMoto {
	t.Helper()
	require(t, "TEST_DYNAMODB_ENDPOINT") // the venv exists when make test runs
	root := repofile.Root(t)
	ports, err := localproc.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, ".venv", "bin", "python"), filepath.Join(root, "scripts", "moto_server.py"), "-H", "127.0.0.1", "-p", ports[0])
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto: %v", err)
	}
	m := &PrivateMoto{Endpoint: "http://127.0.0.1:" + ports[0], pid: cmd.Process.Pid}
	t.Cleanup(func() {
		_ = syscall.Kill(-m.pid, syscall.SIGCONT)
		_ = syscall.Kill(-m.pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+ports[0], time.Second); err == nil {
			c.Close()
			return m
		}
		if time.Now().After(deadline) {
			t.Fatal("private moto_server did not start")
		}
	}
}

// Stop freezes the server; connections hang as with an unresponsive host.
func (m *PrivateMoto) Stop() { _ = syscall.Kill(-m.pid, syscall.SIGSTOP) }

// Continue lets it run again, with all its tables.
func (m *PrivateMoto) Continue() { _ = syscall.Kill(-m.pid, syscall.SIGCONT) }
