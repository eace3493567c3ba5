. ./lib/calc.sh
[ "$(shout hello)" = HELLO ] || { echo "shout gave $(shout hello)"; exit 1; }
