import './style.css';
import { controlPanel } from './control-panel.js';
import { notifyPanel } from './notify-panel.js';
import { fleetSection } from './fleet-section.js';
import { liveChartsPanel } from './live-charts.js';
import { nodeStatsSection, statsPanel } from './stats-panel.js';

document.querySelector('#app')!.append(liveChartsPanel(), statsPanel([nodeStatsSection, fleetSection]), notifyPanel(), controlPanel());
