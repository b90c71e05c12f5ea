// Temporary entry point while the agent is being wired (replaced by the flags + wiring main).
int main() { return 0; }
