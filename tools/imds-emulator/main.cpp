// Temporary entry point while the emulator is being written.
int main() { return 0; }
