package scenario

// commands is every command a script may use, by its key (the first
// word, or "expect WHAT"). The README's "Scenario scripts" section
// documents each; keep the two in step.
var commands map[string]spec

func init() {
	commands = map[string]spec{
		// The run and the cluster.
		"seed":    {minArgs: 1, maxArgs: 1, run: func(*runner, *Step) {}}, // read before the run starts (pickSeed)
		"cluster": {minArgs: 1, maxArgs: 2, keys: []string{"retain-log", "tick"}, run: (*runner).cmdCluster},
		"node":    {minArgs: 4, maxArgs: 4, keys: []string{"within"}, run: (*runner).cmdNode},

		// Faults.
		"partition": {minArgs: 1, maxArgs: -1, run: (*runner).cmdPartition},
		"isolate":   {minArgs: 1, maxArgs: 1, run: (*runner).cmdIsolate},
		"heal":      {run: (*runner).cmdHeal},
		"drop":      {minArgs: 1, maxArgs: 1, run: (*runner).cmdDrop},
		"delay":     {minArgs: 1, maxArgs: 1, run: (*runner).cmdDelay},
		"kill":      {minArgs: 1, maxArgs: 1, run: (*runner).cmdLifecycle},
		"stop":      {minArgs: 1, maxArgs: 1, run: (*runner).cmdLifecycle},
		"restart":   {minArgs: 1, maxArgs: 1, run: (*runner).cmdLifecycle},
		"pause":     {minArgs: 1, maxArgs: 1, run: (*runner).cmdLifecycle},
		"resume":    {minArgs: 1, maxArgs: 1, run: (*runner).cmdLifecycle},

		// Topics and records.
		"create-topic":  {minArgs: 1, maxArgs: 1, keys: []string{"partitions", "rf"}, run: (*runner).cmdCreateTopic},
		"delete-topic":  {minArgs: 1, maxArgs: 1, keys: []string{"within"}, arrow: true, run: (*runner).cmdDeleteTopic},
		"init-producer": {minArgs: 1, maxArgs: 1, run: (*runner).cmdInitProducer},
		"produce": {minArgs: 2, maxArgs: -1, arrow: true,
			keys: []string{"key", "acks", "on", "timeout", "producer", "seq", "within"}, run: (*runner).cmdProduce},
		"produce-many": {minArgs: 1, maxArgs: 1, keys: []string{"count", "size", "batch"}, run: (*runner).cmdProduceMany},
		"consume":      {minArgs: 1, maxArgs: 1, keys: []string{"from", "on", "within"}, arrow: true, run: (*runner).cmdConsume},
		"load":         {minArgs: 2, maxArgs: 3, run: (*runner).cmdLoad},

		// Waiting and checking.
		"wait":                {minArgs: 2, maxArgs: 2, keys: []string{"within"}, run: (*runner).cmdWait},
		"expect leader":       {minArgs: 4, maxArgs: 4, keys: []string{"within"}, run: (*runner).cmdExpectLeader},
		"expect hwm":          {minArgs: 4, maxArgs: 6, keys: []string{"within"}, run: (*runner).cmdExpectHWM},
		"expect raft-trimmed": {minArgs: 6, maxArgs: 6, keys: []string{"within"}, run: (*runner).cmdExpectTrimmed},
		"expect topic":        {minArgs: 3, maxArgs: 3, keys: []string{"within"}, run: (*runner).cmdExpectTopic},
		"expect committed":    {minArgs: 5, maxArgs: 5, keys: []string{"within"}, run: (*runner).cmdExpectCommitted},
		"expect assignment":   {minArgs: 2, maxArgs: 2, anyKeys: true, run: (*runner).cmdExpectAssignment},

		// Consumer groups.
		"join":   {minArgs: 2, maxArgs: 2, keys: []string{"member"}, run: (*runner).cmdJoin},
		"leave":  {minArgs: 1, maxArgs: 1, keys: []string{"member"}, run: (*runner).cmdLeave},
		"commit": {minArgs: 2, maxArgs: 2, keys: []string{"offset", "member", "within"}, run: (*runner).cmdCommit},
	}
}
