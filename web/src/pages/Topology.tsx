// The app's topology as SVG: components (coloured by live status) left of the components they
// depend on, arrows for dependencies; a node is a link to its component (Tab/Enter reach it).
import { useT } from '../i18n';
import { navigate, to } from '../router';
import { statusKey } from '../status';
import { NODE_H, NODE_W, layoutTopology, type TopoEdge, type TopoNode } from '../topology';
import type { Row } from './AppPage';

export function Topology({ team, app, rows }: { team: string; app: string; rows: Row[] }) {
  const { t } = useT();
  const nodes: TopoNode[] = rows.map((r) => ({ id: r.c.name, label: r.c.name, external: false }));
  const edges: TopoEdge[] = [];
  const seen = new Set(nodes.map((n) => n.id));
  for (const r of rows) {
    for (const d of r.deps) {
      const id = d.target_app === app ? d.target_component : `${d.target_app}/${d.target_component}`;
      if (!seen.has(id)) {
        seen.add(id);
        nodes.push({ id, label: id, external: true });
      }
      edges.push({ from: r.c.name, to: id });
    }
  }
  const byName = new Map(rows.map((r) => [r.c.name, r]));
  const layout = layoutTopology(nodes, edges);
  return (
    <div className="topology card" data-testid="topology">
      <svg width={layout.width} height={layout.height} viewBox={`0 0 ${layout.width} ${layout.height}`} role="img" aria-label={t('topology.label', { app })}>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" className="edge-head" />
          </marker>
        </defs>
        {layout.edges.map((e) => {
          const mx = (e.x1 + e.x2) / 2;
          return (
            <path key={e.from + '>' + e.to} className="edge" data-edge={`${e.from}>${e.to}`} d={`M ${e.x1} ${e.y1} C ${mx} ${e.y1}, ${mx} ${e.y2}, ${e.x2} ${e.y2}`} markerEnd="url(#arrow)" />
          );
        })}
        {layout.nodes.map((n) => {
          const r = byName.get(n.id);
          const status = r?.status;
          const href = r ? to.component(team, app, n.id) : to.component(team, n.id.split('/')[0], n.id.split('/')[1]);
          const label = status ? `${n.label}: ${t(statusKey(status))}` : n.label;
          return (
            <a
              key={n.id}
              href={href}
              aria-label={label}
              data-node={n.id}
              data-status={status ?? 'external'}
              onClick={(ev) => { ev.preventDefault(); navigate(href); }}
            >
              <g className={`node ${status ? 'node-' + status : 'node-external'}`} transform={`translate(${n.x}, ${n.y})`}>
                <rect width={NODE_W} height={NODE_H} rx="8" />
                <circle cx="16" cy={NODE_H / 2} r="6" className="dot" />
                <text x="30" y="22" className="node-name">{n.label.length > 24 ? n.label.slice(0, 23) + '…' : n.label}</text>
                <text x="30" y="40" className="node-status">
                  {status ? `${t(statusKey(status))} · ${t('comp.instancesReady', { ready: r!.ready, total: r!.c.replicas })}` : t('topology.external')}
                </text>
                <title>{label}</title>
              </g>
            </a>
          );
        })}
      </svg>
      <ul className="legend" aria-hidden="true">
        {(['running', 'starting', 'degraded', 'buildFailed', 'stopped', 'noVersion'] as const).map((s) => (
          <li key={s}><span className={`swatch node-${s}`} /> {t(statusKey(s))}</li>
        ))}
      </ul>
    </div>
  );
}
