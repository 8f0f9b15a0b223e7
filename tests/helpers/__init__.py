"""What our tests share and are not tests: the README's commands, a small twin profile, the private
container engine's kit, the real servers' scripts, the machine's measured speed."""
