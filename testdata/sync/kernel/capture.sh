#!/bin/sh
# How the kernel sync messages of this folder were captured: run inside user-mode Linux
# with kernel IPVS (`shared/tools/uml-ipvs run capture.sh OUTDIR`; Linux 7.2.7, ipvsadm
# 1.31). A NAT director with a persistent TCP service (/24 mask, 300 s), a UDP service and
# their IPv6 twins; a client sends 5 segments and 5 datagrams on each and closes after a
# few seconds; the sync master (syncid 7) sends to a capture namespace on a veth. Then
# sync_version is set to 0 and one more client runs. Python 3 drives the traffic.
set -x
PY=/usr/bin/python3
ip link add s0 type veth peer name s1
ip netns add cap; ip link set s1 netns cap
ip addr add 10.99.0.1/24 dev s0; ip link set s0 up
ip -n cap addr add 10.99.0.2/24 dev s1; ip -n cap link set s1 up; ip -n cap link set lo up
cat > /tmp/capture.py <<'PYX'
import socket,struct,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('224.0.0.81',8848))
s.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,struct.pack('4s4s',socket.inet_aton('224.0.0.81'),socket.inet_aton('10.99.0.2')))
s.settimeout(float(sys.argv[1]))
i=0
while True:
    try: d=s.recv(65535)
    except socket.timeout: break
    open(sys.argv[2]+'/msg%02d.bin'%i,'wb').write(d); i+=1
print("captured",i)
PYX
cat > /tmp/srv.py <<'PYX'
import socket,sys,threading
fam=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
t=socket.socket(fam,socket.SOCK_STREAM); t.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
t.bind((sys.argv[1],8080)); t.listen(16)
u=socket.socket(fam,socket.SOCK_DGRAM); u.bind((sys.argv[1],5353))
def tcp():
    while True:
        c,_=t.accept()
        def h(c):
            while c.recv(100): pass
        threading.Thread(target=h,args=(c,),daemon=True).start()
def udp():
    while True:
        d,a=u.recvfrom(100); u.sendto(d,a)
threading.Thread(target=tcp,daemon=True).start(); udp()
PYX
cat > /tmp/cli.py <<'PYX'
import socket,sys,time
vip=sys.argv[1]; fam=socket.AF_INET6 if ':' in vip else socket.AF_INET
c=socket.socket(fam,socket.SOCK_STREAM); c.bind((sys.argv[2],int(sys.argv[3]))); c.connect((vip,80))
for i in range(5): c.send(b'x'); time.sleep(0.05)
u=socket.socket(fam,socket.SOCK_DGRAM); u.bind((sys.argv[2],int(sys.argv[3])+1))
for i in range(5): u.sendto(b'y',(vip,53)); time.sleep(0.05)
time.sleep(float(sys.argv[4]))
PYX
ip netns add c; ip netns add r
ip link add c0 type veth peer name c1; ip link set c1 netns c
ip link add r0 type veth peer name r1; ip link set r1 netns r
ip addr add 10.1.0.1/24 dev c0; ip addr add 2001:db8:1::1/64 dev c0 nodad; ip link set c0 up
ip addr add 10.2.0.1/24 dev r0; ip addr add 2001:db8:2::1/64 dev r0 nodad; ip link set r0 up
ip -n c addr add 10.1.0.2/24 dev c1; ip -n c addr add 2001:db8:1::2/64 dev c1 nodad; ip -n c link set c1 up; ip -n c link set lo up
ip -n r addr add 10.2.0.2/24 dev r1; ip -n r addr add 2001:db8:2::2/64 dev r1 nodad; ip -n r link set r1 up; ip -n r link set lo up
ip -n c route add default via 10.1.0.1; ip -n c -6 route add default via 2001:db8:1::1
ip -n r route add default via 10.2.0.1; ip -n r -6 route add default via 2001:db8:2::1
sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n c link set c1 up; sleep 1
ipvsadm -A -t 10.1.0.1:80 -s rr -p 300 -M 255.255.255.0
ipvsadm -a -t 10.1.0.1:80 -r 10.2.0.2:8080 -m
ipvsadm -A -u 10.1.0.1:53 -s rr
ipvsadm -a -u 10.1.0.1:53 -r 10.2.0.2:5353 -m
ipvsadm -A -t [2001:db8:1::1]:80 -s rr
ipvsadm -a -t [2001:db8:1::1]:80 -r [2001:db8:2::2]:8080 -m
ipvsadm -A -u [2001:db8:1::1]:53 -s rr
ipvsadm -a -u [2001:db8:1::1]:53 -r [2001:db8:2::2]:5353 -m
ip netns exec r $PY /tmp/srv.py 10.2.0.2 & ip netns exec r $PY /tmp/srv.py 2001:db8:2::2 &
ipvsadm --start-daemon master --mcast-interface s0 --syncid 7
ip netns exec cap $PY /tmp/capture.py 8 $OUT > $OUT/capture.log 2>&1 &
CAP=$!
sleep 1
ip netns exec c $PY /tmp/cli.py 10.1.0.1 10.1.0.2 40000 4 &
ip netns exec c $PY /tmp/cli.py 2001:db8:1::1 2001:db8:1::2 40010 4 &
sleep 3
ipvsadm -Lnc > $OUT/lnc1.txt
wait $CAP
mkdir -p $OUT/v1; mv $OUT/msg*.bin $OUT/v1/ 2>/dev/null
echo 0 > /proc/sys/net/ipv4/vs/sync_version
ip netns exec cap $PY /tmp/capture.py 6 $OUT > $OUT/capture0.log 2>&1 &
CAP=$!
sleep 1
ip netns exec c $PY /tmp/cli.py 10.1.0.1 10.1.0.2 40020 1 &
sleep 3
ipvsadm -Lnc > $OUT/lnc0.txt
wait $CAP
mkdir -p $OUT/v0; mv $OUT/msg*.bin $OUT/v0/ 2>/dev/null
ls -la $OUT/v0 $OUT/v1
