package linuxnft_test

import (
	"testing"

	"github.com/natcheck/natcheck/device/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { sandboxtest.Main(m) }
