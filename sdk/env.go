package sdk

// LogLevelEnv is the environment variable through which the core tells a
// plugin its log level.
const LogLevelEnv = "ZOE_PLUGIN_LOG_LEVEL"
